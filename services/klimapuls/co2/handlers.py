"""Batch handling of CO2 account and target events (no Kafka here).

One batch is one database transaction: valid events are stored idempotently,
the series and target progress are recomputed from the stored accounts, and
status changes are logged in the outbox. Rejected events come back as dead
letters for the caller to publish before it acknowledges the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from klimapuls.core.deadletter import DeadLetter
from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.model import INDICATOR_UNITS
from klimapuls.core.validation import decode_event
from klimapuls.storage import repository
from klimapuls.storage.progress import recompute_emission_progress

__all__ = ["BatchResult", "Co2Handler", "Incoming", "recompute_progress"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One message as read from a topic."""

    kind: str
    value: bytes
    origin: str


@dataclass
class BatchResult:
    """What one batch did."""

    stored: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    status_changes: list[repository.StatusChange] = field(default_factory=list)


def recompute_progress(
    conn: Connection, now: datetime
) -> list[repository.StatusChange]:
    """Rewrite emission series and target progress from the stored accounts.

    The shared implementation (`storage.progress`) is also what
    `klimapuls progress` runs, so both give the same numbers.
    """
    return recompute_emission_progress(conn, now)


class Co2Handler:
    """Stores CO2 account and target events and keeps progress current."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str = "co2"
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        self._recomputed_once = False

    def _reject(
        self, message: Incoming, error: EventValidationError, now: datetime
    ) -> DeadLetter:
        log.warning("rejected %s at %s: %s", message.kind, message.origin, error)
        return DeadLetter.from_error(
            error,
            kind=message.kind,
            origin=message.origin,
            payload=message.value,
            rejected_by=self.name,
            rejected_at=now,
        )

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Validate, store and derive, all in one transaction."""
        now = self.clock()
        result = BatchResult()
        valid: dict[str, list[tuple[Incoming, dict[str, Any]]]] = {
            "co2_account": [],
            "target": [],
        }
        for message in batch:
            try:
                event = decode_event(message.kind, message.value)
            except EventValidationError as exc:
                result.dead_letters.append(self._reject(message, exc, now))
                continue
            valid[message.kind].append((message, event))

        def work(conn: Connection) -> None:
            accounts = [e for _, e in valid["co2_account"]]
            targets = [e for _, e in valid["target"]]
            added, reused = repository.store_co2_accounts(conn, accounts)
            t_added, clashes = repository.store_targets(conn, targets, INDICATOR_UNITS)
            rejected = {"co2_account": set(reused), "target": set(clashes)}
            for kind, pairs in valid.items():
                for message, event in pairs:
                    if event["event_id"] in rejected[kind]:
                        issue = FieldIssue(
                            "event_id",
                            "already stored with different content (a revision "
                            "needs a new event_id, and a target a new version)",
                        )
                        error = EventValidationError([issue])
                        result.dead_letters.append(self._reject(message, error, now))
            result.stored = added + t_added
            result.duplicates = (
                len(accounts)
                + len(targets)
                - result.stored
                - len(reused)
                - len(clashes)
            )
            if result.stored or not self._recomputed_once:
                result.status_changes = recompute_progress(conn, now)

        repository.in_transaction(self.engine, work)
        self._recomputed_once = True
        return result
