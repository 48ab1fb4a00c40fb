"""Batch handling of mobility count events (no Kafka here).

Valid counts are judged and stored idempotently (restatements kept,
`is_current` moved to the newest), one transaction a batch; rejected events
come back as dead letters. Deriving (the incremental rollups, then the
modal split and yearly rows of the boards, then a `SeriesChange`) runs once
per window, as for every series owner (`klimapuls.deriving`); the rollups'
watermark says what is not yet rolled up, so nothing waits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from klimapuls.core.batch import BatchResult
from klimapuls.core.identity import Judgement
from klimapuls.core.mobility import modal_splits
from klimapuls.core.progress import MOBILITY_INDICATORS
from klimapuls.deriving import SeriesOwner
from klimapuls.mobility import MOBILITY_COUNT
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import in_transaction

__all__ = [
    "MOBILITY_COUNT",
    "MobilityBatchResult",
    "MobilityHandler",
    "write_modal_splits",
]


@dataclass
class MobilityBatchResult(BatchResult):
    """What one batch did, with the restatements and the rollup refresh."""

    restated: int = 0
    rollup: counts.RollupRefresh | None = None


def write_modal_splits(conn: Connection, now: datetime) -> None:
    """Rewrite the modal split and yearly rows from the yearly rollup."""
    # Refreshes and recomputations take turns: the modal split is rewritten
    # whole, which two transactions at once would collide on.
    counts.lock_rollups(conn)
    counts.write_modal_splits(conn, modal_splits(counts.yearly_trips(conn), now.date()))


class MobilityHandler(SeriesOwner[MobilityBatchResult]):
    """Stores count events and keeps rollups and the modal split current."""

    service = "mobility"
    kind = MOBILITY_COUNT
    indicators = MOBILITY_INDICATORS
    scope_field = "municipality_code"
    result_type = MobilityBatchResult
    _backend_name: counts.Backend | None = None
    #: Whether the last batch was partly stored already: a replay's batches
    #: come in runs, and judging them before the lock too would be wasted.
    _replaying = False

    def _backend(self, conn: Connection) -> counts.Backend:
        if self._backend_name is None:
            self._backend_name = counts.rollup_backend(conn)
        return self._backend_name

    def store(
        self,
        conn: Connection,
        events: list[dict[str, Any]],
        now: datetime,
        result: MobilityBatchResult,
    ) -> list[Judgement]:
        """Store counts; restated ones stay, no longer current."""
        stored = counts.store_counts(
            conn, events, now, grants=self.grants.get(), draft=not self._replaying
        )
        self._replaying = stored.replayed
        result.restated = stored.restated
        return stored.judgements

    def take_turn(self, conn: Connection, wait: bool) -> bool:
        """One worker of the service rolls up at a time (the rollup lock)."""
        if wait:
            counts.lock_rollups(conn)
            return True
        return counts.try_lock_rollups(conn)

    def derive(
        self, conn: Connection, now: datetime, result: MobilityBatchResult
    ) -> None:
        """Roll up what is new, then rewrite the modal split (tables branch).

        The rollups go up to the counts committed when the derive began
        (`committed_seq`, its own short transaction), so count writers,
        another worker's among them, are not held up while it works.
        """
        upto = in_transaction(self.engine, counts.committed_seq)
        result.rollup = counts.refresh_rollups(conn, upto)
        if self._backend(conn) == "tables":
            write_modal_splits(conn, now)

    def derived(self, now: datetime) -> None:
        """TimescaleDB: continuous aggregates refresh outside a transaction."""
        if self._backend_name == "timescaledb":
            counts.refresh_continuous_aggregates(self.engine)
            in_transaction(self.engine, lambda conn: write_modal_splits(conn, now))

    def refresh(self) -> MobilityBatchResult:
        """Rewrite the modal split as of now (a year turns final on 1 June)."""
        now = self.clock()
        in_transaction(self.engine, lambda conn: write_modal_splits(conn, now))
        return MobilityBatchResult()
