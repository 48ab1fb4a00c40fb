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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.messages import TargetStatusChange
from klimapuls.core.progress import evaluate_all, status_changes, trajectories
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

    Load (storage) -> evaluate (core) -> write (storage). The restatement
    log is rewritten from the same facts.
    """
    progress.lock_progress(conn)
    facts, last = load_facts(conn), progress.last_statuses(conn)
    evaluated = evaluate_all(facts, now.date())
    changes, paths = status_changes(last, evaluated, now), trajectories(evaluated)
    progress.write_progress(conn, evaluated, now)
    progress.write_trajectories(conn, paths)
    restatements.write_restatements(conn, all_restatements(facts))
    return progress.log_status_changes(conn, changes)


class TargetsHandler:
    """Stores target versions and keeps every target's progress current."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str = "targets"
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        self.grants = grant_cache(engine)
        # Recompute on the first batch even if it brings nothing new, so a
        # restarted service brings progress up to date at once.
        self._recomputed_once = False

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Validate, store and recompute, all in one transaction."""
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
        if not decoded and not valid[SERIES_CHANGE] and self._recomputed_once:
            return result

        def work(conn: Connection) -> None:
            judgements = targets.store_targets(conn, [d.event for d in decoded])
            result.judged(decoded, judgements, self.name, now)
            result.status_changes = recompute(conn, now)

        in_transaction(self.engine, work)
        self._recomputed_once = True
        return result

    def refresh(self) -> BatchResult:
        """Recompute as of now without new events (statuses change with time)."""
        now = self.clock()
        changes = in_transaction(self.engine, lambda conn: recompute(conn, now))
        self._recomputed_once = True
        return BatchResult(status_changes=changes)
