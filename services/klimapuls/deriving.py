"""The batch shape the three series owners share: store each batch, derive per window.

The co2, fleet and mobility services each store the facts of a batch
(judged idempotently) and then derive rows for the boards from all stored
facts (the emission series, the fleet shares, the rollups and modal split)
and announce a `SeriesChange` naming the scopes whose facts arrived,
duplicates included. Deriving reads much more than one batch, so it runs
once per window (`window_seconds`), from `flush` (the service's timer), in
a thread and a transaction of its own: batches are never held up by a
derive (on two cores, a worker waiting for its derive left a core idle),
and the store's locks are not held through it. A scope is pending from its
batch's commit until a derive that began after that commit ends; a failed
or skipped derive leaves its scopes pending for the next tick. With a
window of 0 every batch derives right after its store (the handlers'
tests).

Nothing durable depends on memory: derived rows are recomputed from stored
facts. The scopes to announce are kept in memory: a new handler (a
restarted service) derives and announces on its first batch or timer tick
(or, if it starts on a backlog, once it has read it: see `reading`),
naming the region and the scopes of its own batches, so scopes stored in
the last window before a crash are not named again. The targets service
recomputes every target on any notice, so its progress is complete either
way; a consumer that wants one notice per scope must not rely on the list.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.identity import Judgement
from klimapuls.core.messages import SeriesChange
from klimapuls.core.model import REGION_CODE
from klimapuls.storage.db import in_transaction
from klimapuls.storage.grants import grant_cache

__all__ = ["SeriesOwner"]

R = TypeVar("R", bound=BatchResult)

#: The share of a window after which a derive is due again (see `_due`).
_TICK_SLACK = 0.8
#: A derive is due no sooner than this many times its last one took after it.
_PACE = 3.0


class SeriesOwner(Generic[R]):
    """Store a batch, derive once per window; subclasses say how.

    Subclasses set `service`, `kind`, `indicators`, `scope_field` and `result_type`
    and implement `store` and `derive`; `derived` runs after the derive's
    commit (mobility's TimescaleDB refresh).
    """

    #: The owning service's name, unless the handler is given another.
    service: str
    kind: str
    indicators: Collection[str]
    #: The event field naming the scope a fact belongs to.
    scope_field: str
    result_type: type[R]

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        name: str | None = None,
        window_seconds: float = 0.0,
        backlog_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        #: Who rejects (dead letters) and announces (series notices).
        self.name = name or self.service
        #: The derive window; the service's timer calls `flush` this often.
        self.window_seconds = window_seconds
        #: While the worker reads a backlog (`reading`), a derive is due only
        #: this long after the last one (0: as when it has caught up).
        self.backlog_seconds = backlog_seconds
        self._behind = False
        self.grants = grant_cache(engine)
        # The timer's `flush` and the batches run in threads of their own:
        # `_lock` guards the fields below, `_deriving` lets one derive run.
        self._lock = threading.Lock()
        self._deriving = threading.Lock()
        #: Scopes whose facts arrived since the last derive.
        self._pending: set[str] = set()
        # A new handler derives first thing: a restart may have cut off the
        # last window of the process before. If it starts on a backlog, the
        # derive after the backlog covers those rows (`_due`).
        self._derived_at: datetime | None = None
        self._created = clock()
        #: How long this handler's last derive took (`_due` paces by it).
        self._derive_seconds = 0.0

    # -- what each owner says ------------------------------------------------

    def store(
        self, conn: Connection, events: list[dict[str, Any]], now: datetime, result: R
    ) -> list[Judgement]:
        """Store the valid events of a batch; one judgement per event."""
        raise NotImplementedError

    def derive(self, conn: Connection, now: datetime, result: R) -> None:
        """Rewrite the derived rows from all stored facts."""
        raise NotImplementedError

    def derived(self, now: datetime) -> None:
        """After the derive's commit (nothing by default)."""

    def take_turn(self, conn: Connection, wait: bool) -> bool:
        """Whether this worker derives now; False: another one is at it.

        Owners whose service runs several workers in one group take a lock
        here; without `wait` a worker that finds it taken leaves its window
        pending (retried with its next batch or tick) instead of queueing
        behind a derive that covers its rows too. Stops wait.
        """
        return True

    # -- the shared shape ----------------------------------------------------

    def reading(self, behind: bool) -> None:
        """The worker says whether it reads a backlog (`klimapuls.bulk.more_waiting`).

        A derive competes with the batches for the database and the cores
        while it rolls up; during a backlog it waits (`backlog_seconds`
        takes the window's place in `_due`) and, once the worker has caught
        up (a batch that reaches the broker's high watermark, or an empty
        poll), covers the whole backlog at the next due tick, in one pass
        that costs less per row than several would. A new worker that
        starts on a backlog waits so too, counting from its start. The
        boards trail a backlog by that much; stored counts never wait for a
        derive. A stopping worker's forced derive covers what the window
        left.
        """
        self._behind = behind

    def _due(self, now: datetime) -> bool:
        if self.window_seconds <= 0:
            return True
        if self._derived_at is None:
            # First thing, unless the worker starts on a backlog: a derive
            # then would roll up its first batches mid-backlog (two workers'
            # first derives took ~10 % of a 200,000-count backlog's time).
            waited = (now - self._created).total_seconds()
            return not self._behind or waited >= self.backlog_seconds * _TICK_SLACK
        # A slow derive (a backlog's) spaces the next out to keep derives to
        # about a third of the time: each then covers more rows, and costs
        # less per row; a quick one (live traffic) keeps to the window. The
        # slack: a fixed-rate timer (faust's) ticks a little less than a
        # window after the clock its last derive took, and without it every
        # other tick would find the window still open.
        span = max(self.window_seconds, _PACE * self._derive_seconds)
        if self._behind:
            span = max(span, self.backlog_seconds)
        elapsed = (now - self._derived_at).total_seconds()
        return elapsed >= span * _TICK_SLACK

    def handle(self, batch: Sequence[Incoming]) -> R:
        """Validate and store in one transaction; derive only with a window of 0."""
        now = self.clock()
        began = time.perf_counter()
        result, valid = decode_batch(
            batch,
            (self.kind,),
            self.name,
            now,
            self.result_type,
            grants=self.grants.get(),
        )
        result.stages["decode"] = time.perf_counter() - began
        decoded = valid[self.kind]
        if not decoded:
            return result

        def work(conn: Connection) -> list[Judgement]:
            began = time.perf_counter()
            judgements = self.store(conn, [d.event for d in decoded], now, result)
            result.stages["store"] = time.perf_counter() - began
            return judgements

        judgements = in_transaction(self.engine, work)
        # After the commit: the writers' lock is not held while this runs.
        result.judged(decoded, judgements, self.name, now)
        # Pending from the commit on: a derive that takes them covers the rows.
        with self._lock:
            self._pending.update(str(d.event[self.scope_field]) for d in decoded)
        if self.window_seconds <= 0:
            self._flush_into(result, force=False)
        return result

    def flush(self, force: bool = False) -> R:
        """Derive what the batches left pending, once the window is over.

        The service's timer calls it; `force` derives even inside the
        window (a stopping worker).
        """
        result = self.result_type()
        self._flush_into(result, force)
        return result

    def _flush_into(self, result: R, force: bool) -> None:
        with self._deriving:
            with self._lock:
                now = self.clock()
                first = self._derived_at is None
                if not ((self._pending or first) and (force or self._due(now))):
                    return
                scopes, self._pending = self._pending, set()
            done = skipped = False
            began = time.perf_counter()
            try:
                if self._derive(now, result, wait=force):
                    # Part of the derive (TimescaleDB's refresh): cut off,
                    # it leaves the scopes pending as a failed derive does.
                    self.derived(now)
                    done = True
                else:
                    skipped = True
            finally:
                with self._lock:
                    if done:
                        self._derived_at = now
                        self._derive_seconds = time.perf_counter() - began
                    else:  # skipped or failed: a later tick tries again
                        self._pending |= scopes
                    if skipped and not first:
                        # Another worker derives (its rows too): this one
                        # paces itself as if it had, so the two do not
                        # derive back to back.
                        self._derived_at = now
            if done:
                self._announce(result, scopes, now)

    def _derive(self, now: datetime, result: R, *, wait: bool) -> bool:
        """Derive in a transaction of its own, if it is this worker's turn."""

        def work(conn: Connection) -> bool:
            began = time.perf_counter()
            if not self.take_turn(conn, wait):
                return False
            self.derive(conn, now, result)
            result.stages["derive"] = time.perf_counter() - began
            return True

        return in_transaction(self.engine, work)

    def _announce(self, result: R, scopes: set[str], now: datetime) -> None:
        result.series_changes.append(
            SeriesChange.of(self.name, self.indicators, scopes | {REGION_CODE}, now)
        )
