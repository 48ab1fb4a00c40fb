"""Count storage and rollups under hostile histories, against a real PostgreSQL.

The staged writes (`store_counts`) must judge every event as the offline
ledger does (`klimapuls.core.identity.Ledger`, what `progress --offline`
uses), and the incremental rollups, refreshed in many small windows, must
equal a full rebuild: around both DST changes and a New Year, with
sub-hour counts, restatements that move trips between municipalities,
re-sends that win their slot back, replays, ids reused in another month,
and two batches stored in one transaction.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from klimapuls.core.batch import Incoming
from klimapuls.core.identity import Ledger, Verdict
from klimapuls.core.mobility import MobilityCount, current_counts
from klimapuls.core.model import REGION_CODE
from klimapuls.core.validation import validate_event
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.storage import grants
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import in_transaction
from tests.helpers import rows, scalar
from tests.mobility.factories import count_event

NOW = datetime(2026, 11, 1, tzinfo=UTC)
#: A reported_at in April 2024, by day.
_AT = "2024-04-%02dT00:00:00+00:00"

#: Every rollup, in a stable order.
ROLLUPS = {
    "mobility_hourly": "bucket, site_id, municipality_code, mode",
    "mobility_daily": "bucket, municipality_code, mode",
    "mobility_yearly": "bucket, municipality_code, mode",
    "mobility_site_monthly": "bucket, site_id, municipality_code, mode",
    "mobility_mode_hourly": "bucket, municipality_code, mode",
    "mobility_region_hourly": "bucket, mode",
}

#: The hours before each change of the Danish clock and a New Year (UTC).
EDGES = (
    datetime(2024, 3, 30, 20, tzinfo=UTC),  # summer time from 31 March 01:00
    datetime(2024, 10, 26, 20, tzinfo=UTC),  # winter time from 27 October 01:00
    datetime(2024, 12, 31, 20, tzinfo=UTC),  # 2025 from 23:00 UTC
)


def _valid(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [validate_event("mobility_count", e, now=NOW) for e in events]


def _store_in(conn: Connection, events: list[dict[str, Any]]) -> counts.StoredCounts:
    return counts.store_counts(
        conn, _valid(events), NOW, grants=grants.load_grants(conn)
    )


def _store(engine: Engine, *batches: list[dict[str, Any]]) -> list[Verdict]:
    """Store `batches` in one transaction; the verdicts in order."""

    def work(conn: Connection) -> list[Verdict]:
        return [
            j.verdict for batch in batches for j in _store_in(conn, batch).judgements
        ]

    return in_transaction(engine, work)


def _rollups(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    return {
        t: rows(engine, f"SELECT * FROM {t} ORDER BY {o}") for t, o in ROLLUPS.items()
    }


def _stored(engine: Engine) -> list[MobilityCount]:
    return [
        MobilityCount(*r.values())
        for r in rows(
            engine, f"SELECT {', '.join(counts._COUNT_COLUMNS)} FROM mobility_count"
        )
    ]


class _History:
    """Random count events near the clock's edges, hostile ones mixed in."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent: list[dict[str, Any]] = []
        self.serial = 0

    def _fresh(self) -> dict[str, Any]:
        rng = self.rng
        self.serial += 1
        start = rng.choice(EDGES) + timedelta(minutes=15 * rng.randint(0, 28))
        return count_event(
            f"s{rng.randint(1, 3)}",
            rng.choice(["car", "bike"]),
            start.isoformat(),
            rng.randint(0, 500),
            municipality_code=rng.choice(["101", "147", "151"]),
            hours=rng.choice([0.25, 1]),
            revision=rng.randint(0, 2),
            reported_at=f"2025-{rng.randint(2, 9):02d}-01T00:00:00+00:00",
            event_id=f"e{self.serial}",
        )

    def event(self) -> dict[str, Any]:
        rng = self.rng
        roll = rng.random()
        if self.sent and roll < 0.15:  # a replay, exactly as sent
            return dict(rng.choice(self.sent))
        if self.sent and roll < 0.3:  # a re-send: same content, sent later
            event = dict(rng.choice(self.sent))
            event["reported_at"] = f"2026-{rng.randint(1, 9):02d}-01T00:00:00+00:00"
            return event
        if self.sent and roll < 0.35:  # an id reused in another month
            old = rng.choice(self.sent)
            moved = datetime.fromisoformat(old["interval_start"]) - timedelta(days=40)
            return {
                **old,
                "interval_start": moved.isoformat(),
                "interval_end": (moved + timedelta(hours=1)).isoformat(),
            }
        event = self._fresh()
        self.sent.append(event)
        return event

    def batch(self) -> list[dict[str, Any]]:
        return [self.event() for _ in range(self.rng.randint(1, 12))]


@pytest.mark.parametrize("seed", range(6))
def test_hostile_histories_store_as_the_ledger_judges_and_roll_up_exactly(
    engine: Engine, seed: int
) -> None:
    history = _History(seed)
    ledger = Ledger("mobility_count")
    for _ in range(14):
        batches = [history.batch() for _ in range(history.rng.choice([1, 1, 2]))]
        # Judged against the stored rows and the events before them.
        expected = [ledger.judge(e).verdict for b in batches for e in _valid(b)]
        assert _store(engine, *batches) == expected
        if history.rng.random() < 0.7:
            in_transaction(engine, counts.refresh_rollups)
    in_transaction(engine, counts.refresh_rollups)

    stored = _stored(engine)
    assert sorted(c.event_id for c in stored) == sorted(ledger.by_event_id)
    current = current_counts(stored)
    flagged = rows(engine, "SELECT event_id FROM mobility_count WHERE is_current")
    assert sorted(r["event_id"] for r in flagged) == sorted(
        c.event_id for c in current.values()
    )
    assert scalar(engine, "SELECT coalesce(sum(trips), 0) FROM mobility_yearly") == (
        sum(c.count for c in current.values())
    )
    incremental = _rollups(engine)
    in_transaction(engine, counts.rebuild_rollups)
    assert _rollups(engine) == incremental


def test_an_id_reused_in_another_month_is_refused_in_one_batch_and_later(
    engine: Engine,
) -> None:
    first = count_event("s1", "bike", "2024-01-31T23:00:00+00:00", 5, event_id="x")
    moved = count_event("s1", "bike", "2024-02-29T23:00:00+00:00", 5, event_id="x")
    assert _store(engine, [first, moved]) == [Verdict.NEW, Verdict.REJECTED]
    assert _store(engine, [moved]) == [Verdict.REJECTED]
    assert _store(engine, [moved], [first]) == [Verdict.REJECTED, Verdict.DUPLICATE]
    assert scalar(engine, "SELECT count(*) FROM mobility_count") == 1


def test_a_re_send_wins_back_its_slot_once_and_its_replay_is_a_duplicate(
    engine: Engine,
) -> None:
    start = "2024-10-27T01:30:00+00:00"  # the repeated local hour 02:00-03:00
    a = count_event(
        "s1", "bike", start, 10, event_id="a", reported_at="2025-01-01T00:00:00+00:00"
    )
    b = count_event(
        "s1", "bike", start, 20, event_id="b", reported_at="2025-02-01T00:00:00+00:00"
    )
    again = {**a, "reported_at": "2025-03-01T00:00:00+00:00"}
    assert _store(engine, [a], [b]) == [Verdict.NEW, Verdict.NEW]
    in_transaction(engine, counts.refresh_rollups)
    # The re-send and its replay in one batch, then the whole batch again.
    assert _store(engine, [again, again, b]) == [
        Verdict.NEW,
        Verdict.DUPLICATE,
        Verdict.DUPLICATE,
    ]
    assert _store(engine, [again, again, b]) == [Verdict.DUPLICATE] * 3
    in_transaction(engine, counts.refresh_rollups)
    assert rows(engine, "SELECT event_id FROM mobility_count WHERE is_current") == [
        {"event_id": "a~2025-03-01T00:00:00+00:00"}
    ]
    assert scalar(engine, "SELECT trips FROM mobility_yearly") == 10


def _incoming(events: list[dict[str, Any]], worker: int) -> list[Incoming]:
    return [
        Incoming("mobility_count", json.dumps(e).encode(), f"counts:{worker}:{i}")
        for i, e in enumerate(events)
    ]


def _watermark(engine: Engine) -> int:
    return int(scalar(engine, "SELECT watermark FROM mobility_rollup_state"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(3))
def test_two_workers_store_and_derive_at_once_and_a_stop_rolls_up_everything(
    engine: Engine, seed: int
) -> None:
    history = _History(seed)
    # The same histories as above, dealt to two workers (two partitions).
    work: list[list[list[dict[str, Any]]]] = [[], []]
    for _ in range(30):
        work[history.rng.randint(0, 1)].append(history.batch())
    workers = [MobilityHandler(engine, lambda: NOW) for _ in work]
    verdicts: list[list[Verdict]] = [[], []]
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def run(n: int) -> None:
        try:
            start.wait()
            for batch in work[n]:
                verdicts[n] += workers[n].handle(_incoming(batch, n)).verdicts
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(50)
    assert not failures and not any(t.is_alive() for t in threads)
    for worker in workers:  # a stop
        worker.flush(force=True)

    sent = sum(len(b) for batches in work for b in batches)
    assert sum(map(len, verdicts)) == sent
    stored = _stored(engine)
    new = sum(v is Verdict.NEW for vs in verdicts for v in vs)
    assert len(stored) == new == len({c.event_id for c in stored})
    assert _watermark(engine) == scalar(engine, "SELECT max(seq) FROM mobility_count")
    current = current_counts(stored)
    assert scalar(engine, "SELECT count(*) FROM mobility_count WHERE is_current") == (
        len(current)
    )
    incremental = _rollups(engine)
    in_transaction(engine, counts.rebuild_rollups)
    assert _rollups(engine) == incremental
    assert scalar(engine, "SELECT sum(trips) FROM mobility_yearly") == sum(
        c.count for c in current.values()
    )


def test_a_worker_that_finds_the_rollups_taken_derives_later(engine: Engine) -> None:
    worker = MobilityHandler(engine, lambda: NOW)
    event = count_event("s1", "bike", "2024-03-31T00:30:00+00:00", 7)
    with engine.begin() as other:  # another worker rolling up
        counts.lock_rollups(other)
        skipped = worker.handle(_incoming([event], 0))
        assert skipped.verdicts == [Verdict.NEW] and not skipped.series_changes
    assert _watermark(engine) == 0
    # Its next tick derives what it left pending, and names its scope.
    later = worker.flush()
    assert [c.scopes for c in later.series_changes] == [
        tuple(sorted(("147", REGION_CODE)))
    ]
    assert scalar(engine, "SELECT trips FROM mobility_yearly") == 7


def test_a_stop_waits_for_the_rollups_and_rolls_up(engine: Engine) -> None:
    worker = MobilityHandler(engine, lambda: NOW)
    with engine.begin() as other:
        counts.lock_rollups(other)
        worker.handle(
            _incoming([count_event("s1", "car", "2024-10-27T00:30:00+00:00", 3)], 0)
        )
    held = threading.Event()

    def hold() -> None:
        with engine.begin() as other:
            counts.lock_rollups(other)
            held.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    stopped = worker.flush(force=True)
    holder.join()
    assert stopped.series_changes
    assert scalar(engine, "SELECT trips FROM mobility_yearly") == 3


def test_a_late_count_re_sent_in_its_own_batch_wins_back_its_slot(
    engine: Engine,
) -> None:
    # `x` arrives late (`s` was reported after it), then is sent again after
    # `s`: the re-send wins the key, as the offline ledger judges it, though
    # `x` itself was first stored in that very batch.
    start = "2024-03-31T00:30:00+00:00"
    s = count_event("s1", "bike", start, 10, event_id="s", reported_at=_AT % 10)
    x = count_event("s1", "bike", start, 20, event_id="x", reported_at=_AT % 5)
    again = {**x, "reported_at": _AT % 20}
    ledger = Ledger("mobility_count")
    expected = [ledger.judge(e).verdict for e in _valid([s, x, again])]
    assert expected == [Verdict.NEW, Verdict.NEW, Verdict.NEW]

    assert _store(engine, [s]) + _store(engine, [x, again]) == expected
    in_transaction(engine, counts.refresh_rollups)
    assert scalar(engine, "SELECT event_id FROM mobility_count WHERE is_current") == (
        "x~2024-04-20T00:00:00+00:00"
    )
    assert scalar(engine, "SELECT trips FROM mobility_yearly") == 20
