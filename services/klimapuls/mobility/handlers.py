"""Batch handling of mobility count events (no Kafka here).

One batch is one database transaction: valid counts are judged and stored
idempotently (restatements kept, `is_current` moved to the newest).
Rejected events come back as dead letters.

Deriving (the incremental rollups, then the modal split and yearly rows of
the boards, then a `SeriesChange` for the targets service naming every
scope whose counts arrived, duplicates included) costs about as much as
storing, so it runs once per window (`derive_seconds`), in the transaction
of the batch that finds the window over, or from `flush` (the service's
timer) when no batch comes. Nothing depends on memory for the rows: the
rollups' watermark says what is not yet rolled up. The notice's scopes are
kept in memory, so a new handler (a restarted service) announces every
scope once with its first derive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.messages import SeriesChange
from klimapuls.core.mobility import modal_splits
from klimapuls.core.model import REGION_CODE
from klimapuls.core.progress import MOBILITY_INDICATORS
from klimapuls.core.reference import municipality_codes
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
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        name: str = "mobility",
        derive_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        #: The derive window; the service's timer calls `flush` this often.
        self.window_seconds = derive_seconds
        self.grants = grant_cache(engine)
        self._backend_name: counts.Backend | None = None
        # The timer's `flush` and the batches run in threads of their own.
        self._lock = threading.Lock()
        #: Scopes whose counts arrived since the last derive; all at first.
        self._pending: set[str] = set(municipality_codes())
        self._derived_at: datetime | None = None

    def _backend(self, conn: Connection) -> counts.Backend:
        if self._backend_name is None:
            self._backend_name = counts.rollup_backend(conn)
        return self._backend_name

    def _due(self, now: datetime) -> bool:
        if self._derived_at is None:
            return True
        return (now - self._derived_at).total_seconds() >= self.window_seconds

    def handle(self, batch: Sequence[Incoming]) -> MobilityBatchResult:
        """Validate and store in one transaction; derive too if the window is over."""
        now = self.clock()
        began = time.perf_counter()
        result, valid = decode_batch(
            batch,
            (MOBILITY_COUNT,),
            self.name,
            now,
            MobilityBatchResult,
            grants=self.grants.get(),
        )
        result.stages["decode"] = time.perf_counter() - began
        decoded = valid[MOBILITY_COUNT]
        if not decoded:
            return result
        with self._lock:
            self._pending.update(d.event["municipality_code"] for d in decoded)
            due = self._due(now)

            def work(conn: Connection) -> None:
                began = time.perf_counter()
                stored = counts.store_counts(conn, [d.event for d in decoded], now)
                result.judged(decoded, stored.judgements, self.name, now)
                result.restated = stored.restated
                result.stages["store"] = time.perf_counter() - began
                if due:
                    self._derive_in(conn, result, now)

            began = time.perf_counter()
            in_transaction(self.engine, work)
            stored_at = time.perf_counter()
            if due:
                self._derived(result, now)
            result.stages["commit"] = (
                stored_at
                - began
                - sum(result.stages.get(k, 0.0) for k in ("store", "derive"))
            )
        return result

    def flush(self) -> MobilityBatchResult:
        """Derive what the last batches left pending (the service's timer)."""
        result = MobilityBatchResult()
        with self._lock:
            now = self.clock()
            if self._pending and self._due(now):
                in_transaction(
                    self.engine, lambda conn: self._derive_in(conn, result, now)
                )
                self._derived(result, now)
        return result

    def _derive_in(
        self, conn: Connection, result: MobilityBatchResult, now: datetime
    ) -> None:
        began = time.perf_counter()
        result.rollup = counts.refresh_rollups(conn)
        if self._backend(conn) == "tables":
            write_modal_splits(conn, now)
        result.stages["derive"] = time.perf_counter() - began

    def _derived(self, result: MobilityBatchResult, now: datetime) -> None:
        """After the derive's commit: TimescaleDB's refresh, then the notice."""
        if self._backend_name == "timescaledb":
            # Continuous aggregates refresh outside a transaction; derive after.
            counts.refresh_continuous_aggregates(self.engine)
            in_transaction(self.engine, lambda conn: write_modal_splits(conn, now))
        scopes = self._pending | {REGION_CODE}
        result.series_changes.append(
            SeriesChange.of(self.name, MOBILITY_INDICATORS, scopes, now)
        )
        self._pending = set()
        self._derived_at = now

    def refresh(self) -> MobilityBatchResult:
        """Rewrite the modal split as of now (a year turns final on 1 June)."""
        now = self.clock()
        in_transaction(self.engine, lambda conn: write_modal_splits(conn, now))
        return MobilityBatchResult()
