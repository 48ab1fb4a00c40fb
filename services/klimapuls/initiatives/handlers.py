"""Batch handling of initiative status reports (no Kafka here).

One batch is one database transaction: valid reports are judged and stored
idempotently (new initiatives are registered on the way), and the tovholder
assignments and hand-overs of every initiative the batch touched are
rebuilt from all its stored reports. Missing reports and initiatives without
a tovholder are views over these tables, so they are current as soon as the
batch commits. Rejected events come back as dead letters for the caller to
publish before it acknowledges the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.identity import Verdict
from klimapuls.storage import initiatives
from klimapuls.storage.db import in_transaction
from klimapuls.storage.grants import grant_cache

__all__ = ["KIND", "InitiativeBatchResult", "InitiativeHandler"]

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
        self.grants = grant_cache(engine)

    def handle(self, batch: Sequence[Incoming]) -> InitiativeBatchResult:
        """Validate, store and derive, all in one transaction."""
        now = self.clock()
        result, valid = decode_batch(
            batch,
            (KIND,),
            self.name,
            now,
            InitiativeBatchResult,
            grants=self.grants.get(),
        )
        decoded = valid[KIND]
        if not decoded:
            return result

        def work(conn: Connection) -> None:
            # One writer at a time: timelines are rebuilt from all reports.
            initiatives.lock_initiatives(conn)
            events = [d.event for d in decoded]
            judgements = initiatives.store_status_reports(conn, events)
            kept = [
                e
                for e, j in zip(events, judgements, strict=True)
                if j.verdict is not Verdict.REJECTED
            ]
            result.registered = initiatives.register_initiatives(conn, kept)
            result.judged(decoded, judgements, self.name, now)
            if result.stored:
                touched = {e["initiative_id"] for e in kept}
                result.handovers = initiatives.rebuild_timelines(conn, touched)

        in_transaction(self.engine, work)
        return result
