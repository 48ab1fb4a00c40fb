"""Batch handling of mobility count events (no Kafka here).

One batch is one database transaction: valid counts are judged and stored
idempotently (restatements kept, `is_current` moved to the newest), the
rollups are refreshed incrementally, and the modal split and yearly rows of
the boards are rewritten. Rejected events come back as dead letters, and
every batch with valid events, duplicates included, announces a
`SeriesChange` for the targets service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.messages import SeriesChange
from klimapuls.core.mobility import modal_splits
from klimapuls.core.model import REGION_CODE
from klimapuls.core.progress import MOBILITY_INDICATORS
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import in_transaction
from klimapuls.storage.grants import grant_cache

__all__ = [
    "MOBILITY_COUNT",
    "MobilityBatchResult",
    "MobilityHandler",
    "write_modal_splits",
]

#: The event family this service consumes.
MOBILITY_COUNT = "mobility_count"


@dataclass
class MobilityBatchResult(BatchResult):
    """What one batch did, with the restatements and the rollup refresh."""

    restated: int = 0
    rollup: counts.RollupRefresh | None = None


def write_modal_splits(conn: Connection, now: datetime) -> None:
    """Rewrite the modal split and yearly rows from the yearly rollup."""
    # Writers, refreshes and recomputations take turns: the modal split is
    # rewritten whole, which two transactions at once would collide on.
    counts.lock_counts(conn)
    counts.write_modal_splits(conn, modal_splits(counts.yearly_trips(conn), now.date()))


class MobilityHandler:
    """Stores count events and keeps rollups and the modal split current."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str = "mobility"
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        self.grants = grant_cache(engine)
        self._backend_name: counts.Backend | None = None

    def _backend(self, conn: Connection) -> counts.Backend:
        if self._backend_name is None:
            self._backend_name = counts.rollup_backend(conn)
        return self._backend_name

    def handle(self, batch: Sequence[Incoming]) -> MobilityBatchResult:
        """Validate, store, roll up and derive, all in one transaction."""
        now = self.clock()
        result, valid = decode_batch(
            batch,
            (MOBILITY_COUNT,),
            self.name,
            now,
            MobilityBatchResult,
            grants=self.grants.get(),
        )
        decoded = valid[MOBILITY_COUNT]
        if not decoded:
            return result

        def work(conn: Connection) -> None:
            stored = counts.store_counts(conn, [d.event for d in decoded], now)
            result.judged(decoded, stored.judgements, self.name, now)
            result.restated = stored.restated
            result.rollup = counts.refresh_rollups(conn)
            if self._backend(conn) == "tables":
                write_modal_splits(conn, now)

        in_transaction(self.engine, work)
        if self._backend_name == "timescaledb":
            # Continuous aggregates refresh outside a transaction; derive after.
            counts.refresh_continuous_aggregates(self.engine)
            in_transaction(self.engine, lambda conn: write_modal_splits(conn, now))
        scopes = {d.event["municipality_code"] for d in decoded} | {REGION_CODE}
        result.series_changes.append(
            SeriesChange.of(self.name, MOBILITY_INDICATORS, scopes, now)
        )
        return result

    def refresh(self) -> MobilityBatchResult:
        """Rewrite the modal split as of now (a year turns final on 1 June)."""
        now = self.clock()
        in_transaction(self.engine, lambda conn: write_modal_splits(conn, now))
        return MobilityBatchResult()
