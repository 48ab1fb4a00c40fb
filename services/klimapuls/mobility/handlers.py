"""Batch handling of mobility count and target events (no Kafka here).

One batch is one database transaction: valid counts are stored idempotently
(restatements kept, `is_current` moved to the newest), the rollups are
refreshed incrementally, the modal split and yearly indicators recomputed,
and the progress of mobility targets written with status changes in the
outbox. Target events are stored too (idempotently, as the CO2 service
does), so a new target version is evaluated at once. Rejected events come
back as dead letters for the caller to publish before it acknowledges the
batch.
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
from klimapuls.core.mobility import (
    BIKE_TRIPS,
    SUSTAINABLE_TRIP_SHARE,
    mobility_series,
    modal_splits,
)
from klimapuls.core.model import INDICATOR_UNITS, Progress
from klimapuls.core.targets import evaluate
from klimapuls.core.validation import decode_event
from klimapuls.storage import mobility_repository as counts_repository
from klimapuls.storage import repository
from klimapuls.storage.progress import ProgressKeeper

__all__ = [
    "MOBILITY_COUNT",
    "MOBILITY_INDICATORS",
    "TARGET",
    "BatchResult",
    "Incoming",
    "MobilityHandler",
    "recompute_progress",
]

log = logging.getLogger(__name__)

#: The target indicators this service evaluates.
MOBILITY_INDICATORS = frozenset({SUSTAINABLE_TRIP_SHARE, BIKE_TRIPS})
MOBILITY_COUNT = "mobility_count"
TARGET = "target"


@dataclass
class MobilityBatchResult(BatchResult):
    """What one batch did, with the restatements and the rollup refresh."""

    restated: int = 0
    rollup: counts_repository.RollupRefresh | None = None


def recompute_progress(
    conn: Connection, now: datetime
) -> list[repository.StatusChange]:
    """Rewrite modal split, yearly indicators and mobility target progress."""
    # Writers, refreshes and recomputations take turns: the modal split is
    # rewritten whole, which two transactions at once would collide on.
    counts_repository.lock_counts(conn)
    splits = modal_splits(counts_repository.yearly_trips(conn), now.date())
    counts_repository.write_modal_splits(conn, splits)
    progress: list[Progress] = []
    for target in repository.current_targets(conn):
        # Other indicators are evaluated by their own services.
        if target.indicator not in MOBILITY_INDICATORS:
            continue
        series = mobility_series(splits, target.scope, target.indicator)
        # Stored too, so `klimapuls progress --as-of` can recompute this target.
        repository.write_indicator_series(
            conn, target.indicator, target.scope, series.values()
        )
        progress.append(evaluate(target, series, now.date()))
    return repository.write_progress(conn, progress, now)


class MobilityHandler(ProgressKeeper):
    """Stores count events and keeps rollups, modal split and progress current."""

    service = "mobility"
    result_type = MobilityBatchResult

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str | None = None
    ) -> None:
        super().__init__(engine, clock, name)
        self._backend_name: counts_repository.Backend | None = None

    def recompute(
        self, conn: Connection, now: datetime
    ) -> list[repository.StatusChange]:
        """Rewrite derived rows and progress (`recompute_progress`)."""
        return recompute_progress(conn, now)

    def _backend(self, conn: Connection) -> counts_repository.Backend:
        if self._backend_name is None:
            self._backend_name = counts_repository.rollup_backend(conn)
        return self._backend_name

    def handle(self, batch: Sequence[Incoming]) -> MobilityBatchResult:
        """Validate, store, roll up and derive, all in one transaction."""
        now = self.clock()
        result = MobilityBatchResult()
        valid: dict[str, list[tuple[Incoming, dict[str, Any]]]] = {
            MOBILITY_COUNT: [],
            TARGET: [],
        }
        for message in batch:
            try:
                event = decode_event(message.kind, message.value)
            except EventValidationError as exc:
                result.dead_letters.append(reject(message, exc, self.name, now))
                continue
            valid[message.kind].append((message, event))

        def work(conn: Connection) -> None:
            counts = [e for _, e in valid[MOBILITY_COUNT]]
            stored = counts_repository.store_counts(conn, counts)
            targets = [e for _, e in valid[TARGET]]
            t_added, clashes = repository.store_targets(conn, targets, INDICATOR_UNITS)
            reused = set(stored.reused)
            for message, event in valid[MOBILITY_COUNT]:
                if (event["event_id"], repository.payload_digest(event)) in reused:
                    self._reject_reused(message, result, now)
            for message, event in valid[TARGET]:
                if event["event_id"] in clashes:
                    self._reject_reused(message, result, now)
            result.stored = stored.added + t_added
            result.duplicates = stored.duplicates
            result.restated = stored.restated
            result.rollup = counts_repository.refresh_rollups(conn)
            if self._backend(conn) == "tables" and (
                result.stored or not self._recomputed_once
            ):
                result.status_changes = self.recompute(conn, now)

        repository.in_transaction(self.engine, work)
        if self._backend_name == "timescaledb" and (
            result.stored or not self._recomputed_once
        ):
            # Continuous aggregates refresh outside a transaction; derive after.
            counts_repository.refresh_continuous_aggregates(self.engine)
            result.status_changes = repository.in_transaction(
                self.engine, lambda conn: self.recompute(conn, now)
            )
        self._recomputed_once = True
        return result

    def _reject_reused(
        self, message: Incoming, result: MobilityBatchResult, now: datetime
    ) -> None:
        issue = FieldIssue(
            "event_id",
            "already stored with different content (a correction needs a new "
            "event_id, a count a higher revision, a target a new version)",
        )
        error = EventValidationError([issue])
        result.dead_letters.append(reject(message, error, self.name, now))
