"""The Python producer (kafka-python): validate, then send; reject to dead letters.

Every event is validated before it is sent. An invalid event is not sent to
its topic; it goes to the dead-letter topic with the reason (unless
`dry_run`), so nothing is silently dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from klimapuls.core.deadletter import DeadLetter
from klimapuls.core.errors import EventValidationError
from klimapuls.core.identity import moved_scope_issue
from klimapuls.core.reference import seed_target_events
from klimapuls.core.validation import validate_event
from klimapuls.producer.connect import BrokerUnavailableError, check_reachable
from klimapuls.producer.readers import read_events
from klimapuls.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["EventProducer", "LineIssue", "ProduceReport", "event_key", "produce_file"]

_KEY_FIELDS = {
    "co2_account": "municipality_code",
    "target": "target_id",
    "fleet_status": "operator",
    "mobility_count": "site_id",
    "initiative_status": "initiative_id",
}


def event_key(kind: str, event: dict[str, Any]) -> bytes | None:
    """Partition key: events about the same thing stay in order."""
    value = event.get(_KEY_FIELDS.get(kind, ""))
    return str(value).encode() if value is not None else None


def _now() -> datetime:
    return datetime.now(UTC)


class EventProducer:
    """Sends events to Klimapuls topics with acks from all in-sync replicas.

    Never hangs on a broker that went away: a send blocks at most
    `block_s`, an unacknowledged event fails after `delivery_timeout_s`,
    and the first failure makes every later `send` and `flush` raise a
    `BrokerUnavailableError` naming the broker, so a producing command ends
    with one clear line and a non-zero exit within a bounded time.
    """

    def __init__(
        self,
        settings: Settings,
        name: str = "klimapuls-cli",
        *,
        delivery_timeout_s: float = 20.0,
        block_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.name = name
        self.servers = check_reachable(settings)
        self.delivery_timeout_s = delivery_timeout_s
        self._failure: BaseException | None = None
        try:
            self._producer = KafkaProducer(
                **settings.kafka.kafka_python_options(),
                acks="all",
                # Larger batches and a short linger: ~10k events/s instead of
                # ~6k for files and the simulator, at a few ms of latency.
                batch_size=256 * 1024,
                linger_ms=10,
                bootstrap_timeout_ms=int(block_s * 1000),
                max_block_ms=int(block_s * 1000),
                request_timeout_ms=int(min(delivery_timeout_s / 2, 30) * 1000),
                delivery_timeout_ms=int(delivery_timeout_s * 1000),
            )
        except KafkaError as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> BrokerUnavailableError:
        log.debug("broker failure: %r", exc)
        return BrokerUnavailableError(
            f"the Kafka broker at {self.servers} stopped acknowledging events "
            f"(no answer within {self.delivery_timeout_s:g} s); events not "
            "acknowledged were not delivered"
        )

    def _check(self) -> None:
        if self._failure is not None:
            raise self._unavailable(self._failure)

    def _failed(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc

    def send(self, kind: str, event: dict[str, Any]) -> None:
        """Send an already validated event (asynchronously; see `flush`)."""
        self.send_raw(
            kind, json.dumps(event, ensure_ascii=False).encode(), event_key(kind, event)
        )

    def send_raw(self, kind: str, value: bytes, key: bytes | None = None) -> None:
        """Send a body as is (the simulator uses it for malformed events)."""
        self._send(self.settings.topics.for_kind(kind), key, value)

    def send_dead_letter(self, letter: DeadLetter) -> None:
        """Send a rejected event, with the reason, to the dead-letter topic."""
        self._send(
            self.settings.topics.dead_letter,
            letter.dead_letter_id.encode(),
            letter.to_json(),
        )

    def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self._check()
        try:
            future = self._producer.send(topic, key=key, value=value)
        except KafkaError as exc:
            self._failed(exc)
            raise self._unavailable(exc) from None
        future.add_errback(self._failed)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every sent event is acknowledged by the broker."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            self._failed(exc)
        self._check()

    def close(self) -> None:
        """Flush and close the connection (at once when the broker is gone)."""
        try:
            if self._failure is None:
                self.flush()
        finally:
            self._close(0 if self._failure is not None else 10)

    def _close(self, timeout_s: float) -> None:
        try:
            self._producer.close(timeout=timeout_s)
        except KafkaError:
            pass  # unacknowledged events are reported by `_check`, not here

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Already failing: do not wait on the broker, do not hide the error.
        self._failure = self._failure or exc
        self._close(0)


@dataclass(frozen=True)
class LineIssue:
    """An invalid input line: where, which field, why."""

    line: int
    field: str
    reason: str


@dataclass
class ProduceReport:
    """What `produce_file` did."""

    valid: int = 0
    sent: int = 0
    issues: list[LineIssue] = field(default_factory=list)

    @property
    def invalid_lines(self) -> int:
        """How many lines were rejected."""
        return len({i.line for i in self.issues})


def produce_file(
    kind: str,
    path: Path,
    producer: EventProducer | None,
    *,
    producer_name: str = "klimapuls-cli",
    on_line: Callable[[], None] | None = None,
) -> ProduceReport:
    """Validate every line of `path`; send valid ones (none when `producer` is None).

    Invalid lines are reported with their number, field and reason, and sent
    to the dead-letter topic when a producer is given. A target version that
    moves its target to another scope than the seed targets' or an earlier
    line's is refused as the targets service refuses it (`moved_scope_issue`).
    """
    report = ProduceReport()
    now = _now()
    scopes = (
        {str(e["target_id"]): str(e["scope"]) for e in seed_target_events()}
        if kind == "target"
        else {}
    )
    for line in read_events(kind, path, producer_name, now):
        if on_line is not None:
            on_line()
        error = line.error
        event = line.event
        if error is None and event is not None:
            try:
                validate_event(kind, event, now=now)
                _keep_scope(kind, event, scopes)
            except EventValidationError as exc:
                error = exc
        if error is not None:
            report.issues.extend(
                LineIssue(line.number, i.field, i.reason) for i in error.issues
            )
            if producer is not None:
                producer.send_dead_letter(
                    DeadLetter.from_error(
                        error,
                        kind=kind,
                        origin=f"{path.name}:{line.number}",
                        payload=line.raw,
                        rejected_by=producer.name,
                        rejected_at=now,
                    )
                )
            continue
        assert event is not None  # noqa: S101 - narrowed above
        report.valid += 1
        if producer is not None:
            producer.send(kind, event)
            report.sent += 1
    if producer is not None:
        producer.flush()
    return report


def _keep_scope(kind: str, event: dict[str, Any], scopes: dict[str, str]) -> None:
    """Record a target's scope; raise if a version moves it to another scope."""
    if kind != "target":
        return
    target_id, scope = str(event["target_id"]), str(event["scope"])
    moved = moved_scope_issue(target_id, scopes.get(target_id), scope)
    if moved is not None:
        raise EventValidationError([moved])
    scopes.setdefault(target_id, scope)


def send_events(
    producer: EventProducer, kind: str, events: Iterable[dict[str, Any]]
) -> int:
    """Send already validated events; returns how many."""
    count = 0
    for event in events:
        producer.send(kind, event)
        count += 1
    return count
