"""What every service's batch handler takes and gives back (no I/O here).

A handler decodes each `Incoming` message, stores the valid events (the
storage judges each with `klimapuls.core.identity`), and returns a
`BatchResult`: a verdict per message, the dead letters to publish, and the
outbound notices (series changes). The streaming layer publishes those
after the database commit and only then acknowledges the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from klimapuls.core.authorisation import Grants, authorisation_issue
from klimapuls.core.deadletter import DeadLetter, clip
from klimapuls.core.errors import EventValidationError
from klimapuls.core.identity import Judgement, Verdict
from klimapuls.core.messages import SeriesChange, TargetStatusChange
from klimapuls.core.validation import decode_event

__all__ = ["BatchResult", "Decoded", "Incoming", "decode_batch", "reject"]

log = logging.getLogger(__name__)


# An immutable tuple, not a frozen dataclass: one is made per message read,
# and a frozen dataclass sets its fields one by one (twice as long).
class Incoming(NamedTuple):
    """One message as read: its family, body and `topic:partition:offset`."""

    kind: str
    value: bytes
    origin: str


@dataclass(frozen=True)
class Decoded:
    """A message that passed validation, with its place in the batch."""

    index: int
    message: Incoming
    event: dict[str, Any]


@dataclass
class BatchResult:
    """What one batch did; the streaming layer publishes the outbound parts.

    `verdicts` has one entry per message of the batch, in order (a message
    that failed validation is `REJECTED`); `event_ids` the id each message
    carried, where one could be read.
    """

    stored: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    status_changes: list[TargetStatusChange] = field(default_factory=list)
    series_changes: list[SeriesChange] = field(default_factory=list)
    verdicts: list[Verdict | None] = field(default_factory=list)
    event_ids: list[str | None] = field(default_factory=list)
    #: Seconds the handler spent per stage (decode, store, derive, ...),
    #: measured by the handler; the streaming layer logs the sums.
    stages: dict[str, float] = field(default_factory=dict)

    def judged(
        self,
        decoded: Sequence[Decoded],
        judgements: Sequence[Judgement],
        rejected_by: str,
        now: datetime,
    ) -> None:
        """Record the storage's judgement of each decoded message."""
        for item, judgement in zip(decoded, judgements, strict=True):
            self.verdicts[item.index] = judgement.verdict
            if judgement.verdict is Verdict.NEW:
                self.stored += 1
            elif judgement.verdict is Verdict.DUPLICATE:
                self.duplicates += 1
            else:
                letter = reject(item.message, judgement.error, rejected_by, now)
                self.dead_letters.append(letter)

    @property
    def rejected(self) -> int:
        """Messages refused (invalid, or a clash with a known fact)."""
        return sum(1 for v in self.verdicts if v is Verdict.REJECTED)


def reject(
    message: Incoming, error: EventValidationError, rejected_by: str, now: datetime
) -> DeadLetter:
    """Describe why `message` is refused, for the dead-letter topic (and log it)."""
    # The reasons are cut short: a log line never carries a whole value.
    log.warning(
        "rejected %s at %s: %s", message.kind, message.origin, clip(str(error), 500)
    )
    return DeadLetter.from_error(
        error,
        kind=message.kind,
        origin=message.origin,
        payload=message.value,
        rejected_by=rejected_by,
        rejected_at=now,
    )


R = TypeVar("R", bound=BatchResult)


def decode_batch(
    batch: Sequence[Incoming],
    kinds: Collection[str],
    rejected_by: str,
    now: datetime,
    result_type: type[R],
    *,
    grants: Grants,
) -> tuple[R, dict[str, list[Decoded]]]:
    """Validate every message; invalid ones become dead letters at once.

    `now` is the handler's clock: it also bounds `reported_at` (see
    `klimapuls.core.validation.REPORT_HORIZON`). An event whose producer may
    not write its scope (`core.authorisation`) is refused too, as a dead
    letter on `producer`: so a direct write to a topic cannot bypass the
    gateway's check. Returns the result to fill (a `result_type`) and the
    valid messages by family, in order.
    """
    result = result_type(verdicts=[None] * len(batch), event_ids=[None] * len(batch))
    valid: dict[str, list[Decoded]] = {kind: [] for kind in kinds}
    for index, message in enumerate(batch):
        try:
            event = decode_event(message.kind, message.value, now=now)
            _authorise(grants, message.kind, event)
        except EventValidationError as exc:
            letter = reject(message, exc, rejected_by, now)
            result.dead_letters.append(letter)
            result.verdicts[index] = Verdict.REJECTED
            result.event_ids[index] = letter.event_id
            continue
        # Outbound messages read back (`target_status.v1`) are keyed by `id`.
        result.event_ids[index] = event.get("event_id")
        valid.setdefault(message.kind, []).append(Decoded(index, message, event))
    return result, valid


def _authorise(grants: Grants, kind: str, event: dict[str, Any]) -> None:
    """Raise `EventValidationError` when the producer may not write the event."""
    issue = authorisation_issue(grants, kind, event)
    if issue is not None:
        raise EventValidationError([issue])
