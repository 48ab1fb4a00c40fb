"""What every service's batch handler takes and gives back (no I/O here)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from klimapuls.core.deadletter import DeadLetter, clip
from klimapuls.core.errors import EventValidationError, FieldIssue

__all__ = ["REUSED_EVENT_ID", "BatchResult", "Incoming", "reject"]

log = logging.getLogger(__name__)

#: Why an event whose id is already stored with other content is refused.
REUSED_EVENT_ID = FieldIssue(
    "event_id",
    "already stored with different content (a revision needs a new event_id, "
    "and a target a new version)",
)


@dataclass(frozen=True)
class Incoming:
    """One message as read: its family, body and `topic:partition:offset`."""

    kind: str
    value: bytes
    origin: str


@dataclass
class BatchResult:
    """What one batch did; the streaming layer publishes `dead_letters`."""

    stored: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)


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
