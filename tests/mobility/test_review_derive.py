"""Two workers on one database: batches judged before the lock, derives beside them.

A count batch is judged before the count lock as if none of it were stored
(the draft); a batch another worker commits while this one waits for the
lock must still be judged as if stored after it (its duplicates, the sites
it claimed). The timer derives beside the batches: every stored count is
rolled up, and every scope named, by timer ticks alone, whatever derive
was skipped (another worker's turn) or cut short.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from klimapuls.core.batch import Incoming
from klimapuls.core.errors import RetryableError
from klimapuls.core.identity import Verdict
from klimapuls.core.mobility import current_counts
from klimapuls.core.model import REGION_CODE
from klimapuls.mobility.handlers import MobilityBatchResult, MobilityHandler
from klimapuls.storage import grants
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import in_transaction
from tests.helpers import rows, scalar, wait_for
from tests.mobility.factories import count_event
from tests.mobility.test_review import (
    NOW,
    _History,
    _rollups,
    _store,
    _stored,
    _valid,
    _watermark,
)

START = "2024-03-04T08:00:00+00:00"


def _incoming(events: list[dict[str, Any]], worker: int = 0) -> list[Incoming]:
    return [
        Incoming("mobility_count", json.dumps(e).encode(), f"counts:{worker}:{i}")
        for i, e in enumerate(events)
    ]


def _waiting_for_a_lock(engine: Engine) -> bool:
    return bool(
        scalar(
            engine,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
    )


@contextmanager
def _another_worker_storing(
    engine: Engine, events: list[dict[str, Any]]
) -> Iterator[Connection]:
    """Another worker's batch, stored, holding the count lock until the block ends."""
    with engine.begin() as other:
        counts.store_counts(
            other, _valid(events), NOW, grants=grants.load_grants(other)
        )
        yield other


def _handle_meanwhile(
    worker: MobilityHandler, events: list[dict[str, Any]]
) -> tuple[threading.Thread, list[MobilityBatchResult]]:
    done: list[MobilityBatchResult] = []
    thread = threading.Thread(
        target=lambda: done.append(worker.handle(_incoming(events)))
    )
    thread.start()
    return thread, done


def _frb(
    site: str, code: str, producer: str, count: int, event_id: str
) -> dict[str, Any]:
    event = count_event(
        site, "bike", START, count, municipality_code=code, event_id=event_id
    )
    return {**event, "producer": producer}


@pytest.mark.timeout(30)
def test_a_site_another_worker_claims_while_a_batch_waits_for_the_lock_stays_its(
    engine: Engine, grant: Callable[..., None]
) -> None:
    grant("frederiksberg", "147")
    grant("gentofte", "157")
    # Given the month's partition (so nothing but the count lock holds anyone up)
    assert _store(engine, [_frb("other", "147", "frederiksberg", 1, "p")]) == [
        Verdict.NEW
    ]
    worker = MobilityHandler(engine, lambda: NOW)
    # When Gentofte's first count of the new site `s` is being stored by
    # another worker while Frederiksberg's first count of `s` waits for the lock,
    with _another_worker_storing(engine, [_frb("s", "157", "gentofte", 5, "g")]):
        thread, done = _handle_meanwhile(
            worker, [_frb("s", "147", "frederiksberg", 7, "f")]
        )
        wait_for(lambda: _waiting_for_a_lock(engine), bool, timeout_s=10)
    thread.join(10)
    # Then the site is Gentofte's: Frederiksberg's count is a dead letter.
    [result] = done
    assert result.verdicts == [Verdict.REJECTED]
    assert [d.reason for d in result.dead_letters] == [
        "municipality_code: counting site 's' belongs to municipality '157'; "
        "producer 'frederiksberg' may not move it to '147'"
    ]
    assert rows(
        engine,
        "SELECT site_id, municipality_code FROM counting_site WHERE site_id = 's'",
    ) == [{"site_id": "s", "municipality_code": "157"}]
    assert rows(engine, "SELECT event_id FROM mobility_count WHERE site_id = 's'") == [
        {"event_id": "g"}
    ]


@pytest.mark.timeout(30)
def test_a_count_another_worker_stores_while_a_batch_waits_is_a_duplicate_there(
    engine: Engine,
) -> None:
    assert _store(engine, [count_event("other", "car", START, 1)]) == [Verdict.NEW]
    worker = MobilityHandler(engine, lambda: NOW)
    same = count_event("s", "bike", START, 7, event_id="x")
    later = {**same, "reported_at": "2026-01-01T00:00:00+00:00"}  # a re-send
    with _another_worker_storing(engine, [same]):
        thread, done = _handle_meanwhile(
            worker, [same, count_event("s", "car", START, 2)]
        )
        wait_for(lambda: _waiting_for_a_lock(engine), bool, timeout_s=10)
    thread.join(10)
    [result] = done
    assert result.verdicts == [Verdict.DUPLICATE, Verdict.NEW]
    # And a re-send of it, sent while it is stored, is judged by its slot.
    with _another_worker_storing(engine, [count_event("t", "bike", START, 3)]):
        thread, done = _handle_meanwhile(worker, [later])
        wait_for(lambda: _waiting_for_a_lock(engine), bool, timeout_s=10)
    thread.join(10)
    assert done[0].verdicts == [Verdict.DUPLICATE]  # still current: nothing to win
    assert (
        scalar(engine, "SELECT count(*) FROM mobility_count WHERE site_id = 's'") == 2
    )


class _Clock:
    """A clock a window further on each time it is read (every tick is due)."""

    def __init__(self, step: timedelta) -> None:
        self._ticks = itertools.count()
        self._lock = threading.Lock()
        self.step = step

    def __call__(self) -> datetime:
        with self._lock:
            return NOW + next(self._ticks) * self.step


class _AfterCommitFailsOnce(MobilityHandler):
    """A worker whose step after the derive's commit (TimescaleDB's refresh of
    its continuous aggregates and modal split) finds the database away."""

    failures = 0

    def derived(self, now: datetime) -> None:
        if self.failures:
            self.failures -= 1
            raise RetryableError("database unavailable: the refresh was cut off")
        super().derived(now)


def test_a_derive_cut_off_after_its_commit_leaves_its_scopes_for_the_next_tick(
    engine: Engine,
) -> None:
    worker = _AfterCommitFailsOnce(
        engine, _Clock(timedelta(seconds=60)), window_seconds=60
    )
    worker.flush()  # the first tick of a new worker
    stored = worker.handle(_incoming([count_event("s1", "bike", START, 7)]))
    assert stored.verdicts == [Verdict.NEW] and not stored.series_changes
    worker.failures = 1
    with pytest.raises(RetryableError):
        worker.flush()
    # The timer retries: the next tick names the count's municipality.
    again = worker.flush()
    assert [c.scopes for c in again.series_changes] == [
        tuple(sorted(("147", REGION_CODE)))
    ]
    assert scalar(engine, "SELECT trips FROM mobility_yearly") == 7


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seed", range(2))
def test_two_workers_with_timers_roll_up_and_name_everything_by_ticks_alone(
    engine: Engine, seed: int
) -> None:
    history = _History(seed)
    work: list[list[list[dict[str, Any]]]] = [[], []]
    for _ in range(24):
        work[history.rng.randint(0, 1)].append(history.batch())
    clock = _Clock(timedelta(seconds=1))
    workers = [MobilityHandler(engine, clock, window_seconds=1) for _ in work]
    named: list[set[str]] = [set(), set()]
    failures: list[BaseException] = []
    batches_done = threading.Event()
    rng = random.Random(seed)

    def batches(n: int) -> None:
        try:
            for batch in work[n]:
                workers[n].handle(_incoming(batch, n))
        except BaseException as error:
            failures.append(error)

    def timer(n: int) -> None:
        try:
            while not batches_done.wait(rng.uniform(0, 0.02)):
                for change in workers[n].flush().series_changes:
                    named[n].update(change.scopes)
        except BaseException as error:
            failures.append(error)

    def rollup_lock_holder() -> None:
        # A third party (a rebuild, a modal split rewrite) holds the rollup
        # lock now and then: the timers find it taken and skip.
        while not batches_done.is_set():
            with engine.begin() as conn:
                counts.lock_rollups(conn)
                batches_done.wait(rng.uniform(0, 0.02))
            batches_done.wait(rng.uniform(0, 0.02))

    loaders = [threading.Thread(target=batches, args=(n,)) for n in range(2)]
    others = [threading.Thread(target=timer, args=(n,)) for n in range(2)]
    others.append(threading.Thread(target=rollup_lock_holder))
    for thread in loaders + others:
        thread.start()
    for thread in loaders:
        thread.join(60)
    batches_done.set()
    for thread in others:
        thread.join(30)
    assert not failures
    # Then only ticks follow (no stop, no batch): a few are enough.
    for _ in range(3):
        for n, worker in enumerate(workers):
            for change in worker.flush().series_changes:
                named[n].update(change.scopes)

    assert _watermark(engine) == scalar(engine, "SELECT max(seq) FROM mobility_count")
    current = current_counts(_stored(engine))
    incremental = _rollups(engine)
    in_transaction(engine, counts.rebuild_rollups)
    assert _rollups(engine) == incremental
    assert scalar(engine, "SELECT sum(trips) FROM mobility_yearly") == sum(
        c.count for c in current.values()
    )
    for n in range(2):
        sent = {e["municipality_code"] for b in work[n] for e in b}
        assert sent | {REGION_CODE} <= named[n]


#: Who may write which municipality's counts (tællinger: both).
_PRODUCERS = {
    "frederiksberg": ("147",),
    "gentofte": ("157",),
    "tællinger": ("147", "157"),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seed", range(3))
def test_two_workers_claiming_new_sites_at_once_keep_each_site_with_its_first_count(
    engine: Engine, grant: Callable[..., None], seed: int
) -> None:
    grant("frederiksberg", "147")
    grant("gentofte", "157")
    grant("tællinger", "147", "157", kinds=("mobility_count",))
    rng = random.Random(seed)
    sent: list[dict[str, Any]] = []

    def event(n: int) -> dict[str, Any]:
        if sent and rng.random() < 0.2:  # the same report, to either worker
            return dict(rng.choice(sent))
        producer = rng.choice(list(_PRODUCERS))
        start = datetime(2024, 3, 4, rng.randint(0, 23), tzinfo=NOW.tzinfo)
        made = count_event(
            f"s{rng.randint(1, 60)}",
            rng.choice(["bike", "car"]),
            start.isoformat(),
            rng.randint(1, 50),
            municipality_code=rng.choice(_PRODUCERS[producer]),
            revision=rng.randint(0, 3),
            event_id=f"w{n}:{len(sent)}",
        )
        sent.append({**made, "producer": producer})
        return sent[-1]

    work = [
        [[event(n) for _ in range(rng.randint(1, 6))] for _ in range(30)]
        for n in (0, 1)
    ]
    workers = [MobilityHandler(engine, lambda: NOW) for _ in work]
    results: list[MobilityBatchResult] = []
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            for batch in work[n]:
                results.append(workers[n].handle(_incoming(batch, n)))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures

    owners = {r["site_id"]: r for r in rows(engine, "SELECT * FROM counting_site")}
    stored = rows(engine, "SELECT * FROM mobility_count ORDER BY seq")
    assert {r["event_id"] for r in stored} <= {e["event_id"] for e in sent}
    for site, owner in owners.items():
        of_site = [r for r in stored if r["site_id"] == site]
        # The site is its first stored count's municipality,
        assert of_site[0]["event_id"] == owner["first_event_id"]
        assert of_site[0]["municipality_code"] == owner["municipality_code"]
        # and only a producer granted that municipality wrote another one.
        for r in of_site:
            if r["municipality_code"] != owner["municipality_code"]:
                assert owner["municipality_code"] in _PRODUCERS[r["producer"]], r
    assert {r["site_id"] for r in stored} == set(owners)
    refused = [d.reason for result in results for d in result.dead_letters]
    for reason in refused:
        site = reason.split("'")[1]
        assert f"belongs to municipality '{owners[site]['municipality_code']}'" in (
            reason
        ), reason
    # Every report stored once; each sent one stored, a duplicate or refused.
    verdicts = [v for result in results for v in result.verdicts]
    assert len(verdicts) == sum(len(b) for batches in work for b in batches)
    assert sum(v is Verdict.NEW for v in verdicts) == len(stored)
    assert len(refused) == sum(v is Verdict.REJECTED for v in verdicts)
