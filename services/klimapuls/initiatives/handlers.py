"""Batch handling of initiative status reports (no Kafka here).

One batch is one database transaction: valid reports are stored idempotently
(new initiatives are registered on the way), and the tovholder assignments
and hand-overs of every initiative the batch touched are rebuilt from all its
stored reports. Missing reports and initiatives without a tovholder are views
over these tables, so they are current as soon as the batch commits.
Rejected events come back as dead letters for the caller to publish before it
acknowledges the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming, reject
from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.validation import decode_event
from klimapuls.storage import initiatives_repository as repository
from klimapuls.storage.repository import in_transaction, is_rejected

__all__ = ["KIND", "BatchResult", "Incoming", "InitiativeHandler"]

log = logging.getLogger(__name__)

#: The event family this service consumes.
KIND = "initiative_status"


@dataclass
class InitiativeBatchResult(BatchResult):
    """What one batch did, with new initiatives and tovholder hand-overs."""

    registered: int = 0
    handovers: int = 0


class InitiativeHandler:
    """Stores status reports and keeps tovholder assignments current."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str = "initiatives"
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name

    def handle(self, batch: Sequence[Incoming]) -> InitiativeBatchResult:
        """Validate, store and derive, all in one transaction."""
        now = self.clock()
        result = InitiativeBatchResult()
        valid: list[tuple[Incoming, dict[str, Any]]] = []
        for message in batch:
            try:
                valid.append((message, decode_event(KIND, message.value)))
            except EventValidationError as exc:
                result.dead_letters.append(reject(message, exc, self.name, now))

        def work(conn: Connection) -> None:
            # One writer at a time: timelines are rebuilt from all reports.
            repository.lock_initiatives(conn)
            events = [e for _, e in valid]
            result.registered = repository.register_initiatives(conn, events)
            added, reused = repository.store_status_reports(conn, events)
            refused = 0
            for message, event in valid:
                if is_rejected(event, reused):
                    refused += 1
                    issue = FieldIssue(
                        "event_id",
                        "already stored with different content (a restatement "
                        "needs a new event_id)",
                    )
                    error = EventValidationError([issue])
                    result.dead_letters.append(reject(message, error, self.name, now))
            result.stored = added
            result.duplicates = len(events) - added - refused
            if added:
                touched = {e["initiative_id"] for e in events}
                result.handovers = repository.rebuild_timelines(conn, touched)

        if valid:
            in_transaction(self.engine, work)
        return result
