"""Fleet snapshot storage under hostile histories, against a real PostgreSQL.

The staged writes (`store_fleet_status`) must judge every event as the
offline fold does (`klimapuls.core.fold.EventFold`, with its bus register):
re-sends that win their slot back, replays, bus lists moving between units,
ids reused for another day, and two batches stored in one transaction.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from klimapuls.core.fold import EventFold
from klimapuls.core.identity import Verdict
from klimapuls.core.validation import validate_event
from klimapuls.storage.db import in_transaction
from klimapuls.storage.fleet import store_fleet_status
from tests.fleet.factories import fleet_event
from tests.helpers import rows

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _valid(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [validate_event("fleet_status", e, now=NOW) for e in events]


def _store(engine: Engine, *batches: list[dict[str, Any]]) -> list[Verdict]:
    def work(conn: Connection) -> list[Verdict]:
        return [
            j.verdict
            for batch in batches
            for j in store_fleet_status(conn, _valid(batch))
        ]

    return in_transaction(engine, work)


class _History:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sent: list[dict[str, Any]] = []
        self.serial = 0

    def _fresh(self) -> dict[str, Any]:
        rng = self.rng
        self.serial += 1
        diesel, electric = rng.randint(0, 2), rng.randint(0, 2)
        event = fleet_event(
            rng.choice(["arriva", "keolis"]),
            f"2024-0{rng.randint(1, 2)}-01",
            garage=rng.choice(["g1", "g2"]),
            reported_at=f"2024-03-{rng.randint(1, 28):02d}T12:00:00+00:00",
            event_id=f"f{self.serial}",
            diesel=diesel,
            battery_electric=electric,
        )
        if rng.random() < 0.6:  # from a small pool: units compete for buses
            event["bus_ids"] = rng.sample(["b1", "b2", "b3", "b4"], diesel + electric)
        return event

    def event(self) -> dict[str, Any]:
        rng = self.rng
        roll = rng.random()
        if self.sent and roll < 0.15:
            return dict(rng.choice(self.sent))
        if self.sent and roll < 0.3:
            event = dict(rng.choice(self.sent))
            event["reported_at"] = f"2024-04-{rng.randint(1, 28):02d}T12:00:00+00:00"
            return event
        if self.sent and roll < 0.35:
            return {**rng.choice(self.sent), "date": "2024-02-15"}
        event = self._fresh()
        self.sent.append(event)
        return event

    def batch(self) -> list[dict[str, Any]]:
        return [self.event() for _ in range(self.rng.randint(1, 8))]


@pytest.mark.parametrize("seed", range(6))
def test_hostile_fleet_histories_store_as_the_offline_fold_judges(
    engine: Engine, seed: int
) -> None:
    history = _History(seed)
    fold = EventFold(seed_targets=False)
    for _ in range(14):
        batches = [history.batch() for _ in range(history.rng.choice([1, 1, 2]))]
        expected = [
            fold.judge("fleet_status", e).verdict for b in batches for e in _valid(b)
        ]
        assert _store(engine, *batches) == expected
    stored = rows(engine, "SELECT event_id FROM fleet_status ORDER BY event_id")
    assert [r["event_id"] for r in stored] == sorted(s.event_id for s in fold.fleet)
    listed = rows(
        engine,
        "SELECT operator, garage, snapshot_date, bus_id, event_id FROM fleet_bus",
    )
    assert {
        (r["operator"], r["garage"], r["snapshot_date"], r["bus_id"], r["event_id"])
        for r in listed
    } == {
        (unit[0], unit[2], day, bus, fold.buses.holders[(unit, day)])
        for (unit, day), buses in fold.buses.lists.items()
        for bus in buses
    }


def test_a_late_snapshot_re_sent_in_its_own_batch_wins_back_its_slot(
    engine: Engine,
) -> None:
    day = "2024-02-01"
    early = fleet_event(
        "arriva",
        day,
        garage="g2",
        event_id="b",
        diesel=1,
        reported_at="2024-03-28T12:00:00+00:00",
    )
    late = fleet_event(
        "arriva",
        day,
        garage="g2",
        event_id="a",
        diesel=2,
        reported_at="2024-03-20T12:00:00+00:00",
    )
    again = {**late, "reported_at": "2024-04-06T12:00:00+00:00"}
    fold = EventFold(seed_targets=False)
    expected = [
        fold.judge("fleet_status", e).verdict for e in _valid([early, late, again])
    ]
    assert expected == [Verdict.NEW, Verdict.NEW, Verdict.NEW]

    assert _store(engine, [early]) + _store(engine, [late, again]) == expected
    assert rows(engine, "SELECT event_id FROM fleet_status ORDER BY event_id") == [
        {"event_id": "a"},
        {"event_id": "a~2024-04-06T12:00:00+00:00"},
        {"event_id": "b"},
    ]
