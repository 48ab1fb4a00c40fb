"""Batch handling of target events and series-change notices (no Kafka here).

One batch is one database transaction: valid target versions are judged and
stored (an identical re-declaration is a duplicate, another definition under
a used version is refused), then progress is recomputed for every target:
load the facts (storage), evaluate (core), write progress, trajectories and
status changes (storage). The status changes are the outbox; the app's
publisher sends them after the commit.

A revision is therefore seen by every target at once, whatever the order in
which the series owners' batches and the revision arrive: there is one
writer, and it recomputes from the current facts each time.

A recompute reads every fact, so series notices are coalesced: a batch of
notices only recomputes when the last recompute is `window_seconds` old;
otherwise `flush` (the service's timer) does it when the window is over. A
new target version always recomputes at once. A new handler (a restarted
service) recomputes on its first batch or timer tick, so an acknowledged
notice is never left without its recompute for longer than a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.messages import TargetStatusChange
from klimapuls.core.progress import (
    MeasuredSeries,
    evaluate_all,
    status_changes,
    target_series,
    trajectories,
)
from klimapuls.core.restatements import all_restatements
from klimapuls.storage import progress, restatements, targets
from klimapuls.storage.db import in_transaction
from klimapuls.storage.facts import load_facts
from klimapuls.storage.grants import grant_cache

__all__ = ["SERIES_CHANGE", "TARGET", "TargetsHandler", "recompute"]

TARGET = "target"
SERIES_CHANGE = "series_change"


def recompute(conn: Connection, now: datetime) -> list[TargetStatusChange]:
    """Evaluate every target on the stored facts as of `now`; log changes.

    Load (storage) -> evaluate (core) -> write (storage). The measured
    series (`target_series`) and the restatement log are rewritten from the
    same facts.
    """
    progress.lock_progress(conn)
    facts, last = load_facts(conn), progress.last_statuses(conn)
    measured = MeasuredSeries(facts, now.date())
    evaluated = evaluate_all(facts, now.date(), measured=measured)
    changes, paths = status_changes(last, evaluated, now), trajectories(evaluated)
    progress.write_progress(conn, evaluated, now)
    progress.write_trajectories(conn, paths)
    progress.write_series(conn, target_series(measured))
    restatements.write_restatements(conn, all_restatements(facts))
    return progress.log_status_changes(conn, changes)


class TargetsHandler:
    """Stores target versions and keeps every target's progress current."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        name: str = "targets",
        window_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        #: The notice window; the service's timer calls `flush` this often.
        self.window_seconds = window_seconds
        self.grants = grant_cache(engine)
        # The timer's `flush` and the batches run in threads of their own.
        self._lock = threading.Lock()
        # Recompute first thing even if nothing new comes, so a restarted
        # service brings progress up to date at once.
        self._pending = True
        self._recomputed_at: datetime | None = None

    def _due(self, now: datetime) -> bool:
        if self._recomputed_at is None:
            return True
        return (now - self._recomputed_at).total_seconds() >= self.window_seconds

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Validate, store and (if due) recompute, all in one transaction."""
        now = self.clock()
        result, valid = decode_batch(
            batch,
            (TARGET, SERIES_CHANGE),
            self.name,
            now,
            BatchResult,
            grants=self.grants.get(),
        )
        decoded = valid[TARGET]
        with self._lock:
            self._pending = self._pending or bool(decoded or valid[SERIES_CHANGE])
            if not self._pending:
                return result
            due = bool(decoded) or self._due(now)

            def work(conn: Connection) -> None:
                judgements = targets.store_targets(conn, [d.event for d in decoded])
                result.judged(decoded, judgements, self.name, now)
                if due:
                    result.status_changes = recompute(conn, now)

            in_transaction(self.engine, work)
            if due:
                self._recomputed(now)
        return result

    def flush(self, force: bool = False) -> BatchResult:
        """Recompute for the notices the last batches left pending (the timer).

        `force` recomputes even inside the window (a stopping worker).
        """
        with self._lock:
            now = self.clock()
            if not (self._pending and (force or self._due(now))):
                return BatchResult()
            changes = in_transaction(self.engine, lambda conn: recompute(conn, now))
            self._recomputed(now)
        return BatchResult(status_changes=changes)

    def _recomputed(self, now: datetime) -> None:
        self._pending = False
        self._recomputed_at = now

    def refresh(self) -> BatchResult:
        """Recompute as of now without new events (statuses change with time)."""
        with self._lock:
            now = self.clock()
            changes = in_transaction(self.engine, lambda conn: recompute(conn, now))
            self._recomputed(now)
        return BatchResult(status_changes=changes)
