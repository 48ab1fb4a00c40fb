"""The fleet pipeline end to end: events on the real broker -> rows in PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from klimapuls.producer import EventProducer
from klimapuls.stack.runner import Stack
from tests.fleet.factories import fleet_event
from tests.helpers import rows, scalar, target_event, wait_for

pytestmark = pytest.mark.timeout(180)

FOSSIL_FREE_TARGET = target_event(
    "test-movia-fossil-free",
    scope="movia",
    indicator="fossil_free_bus_share",
    baseline_year=None,
    reduction_pct=None,
    target_value=100,
    target_year=2030,
)
ZERO_EMISSION_TARGET = target_event(
    "test-region-zero-emission",
    scope="1084",
    indicator="zero_emission_bus_share",
    baseline_year=None,
    reduction_pct=None,
    target_value=100,
    target_year=2035,
)


def _count(engine: Engine, table: str) -> int:
    return int(scalar(engine, f"SELECT count(*) FROM {table}"))


def _share(engine: Engine, scope: str, column: str) -> float | None:
    return scalar(
        engine,
        f"SELECT {column} FROM fleet_share WHERE scope = :s ORDER BY date DESC LIMIT 1",
        s=scope,
    )


def test_fleet_events_in_give_rows_shares_and_progress_out(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("fleet", "targets")
    # Movia end 2022 [public]: 39 % fossil-free, 25 % electric or hydrogen,
    # split over a garage in the region and one in Region Sjælland (no
    # municipality code); end 2024: more electric buses in Ballerup, and the
    # region's own hydrogen buses.
    events = [
        fleet_event(
            "movia",
            "2022-12-31",
            garage="Ballerup",
            municipality_code="151",
            diesel=300,
            hybrid=100,
            hvo=100,
            battery_electric=150,
        ),
        fleet_event(
            "movia",
            "2022-12-31",
            garage="Roskilde",
            diesel=271,
            biogas=54,
            battery_electric=100,
            hydrogen=25,
        ),
        fleet_event(
            "movia",
            "2024-12-31",
            garage="Ballerup",
            municipality_code="151",
            diesel=100,
            hvo=200,
            battery_electric=350,
        ),
        fleet_event(
            "region-hovedstaden", "2024-12-31", contract="R-brint", hydrogen=10
        ),
    ]
    for event in events:
        producer.send("fleet_status", event)
    # The targets may come before or after the figures are stored: the
    # targets service recomputes when either arrives.
    producer.send("target", FOSSIL_FREE_TARGET)
    producer.send("target", ZERO_EMISSION_TARGET)
    producer.flush()

    wait_for(lambda: _count(engine, "fleet_status"), lambda n: n == 4)
    progress = wait_for(
        lambda: {
            r["target_id"]: r
            for r in rows(
                engine, "SELECT * FROM target_progress WHERE target_id LIKE 'test-%'"
            )
        },
        lambda p: (
            len(p) == 2
            and all(r["latest_year"] == 2024 for r in p.values())
            and p["test-region-zero-emission"]["latest_value"] == 100 * 360 / 660
        ),
    )
    # The shares are derived once per window, beside the batches.
    movia = wait_for(
        lambda: rows(
            engine, "SELECT * FROM fleet_share WHERE scope = 'movia' ORDER BY date"
        ),
        lambda found: len(found) == 2,
    )
    assert [r["total_buses"] for r in movia] == [1100, 1100]
    assert movia[0]["fossil_free_share"] == pytest.approx(39.0)
    assert movia[0]["zero_emission_share"] == pytest.approx(25.0)
    # End 2024: Ballerup restructured, Roskilde carried forward from 2022.
    assert movia[1]["fossil_free_buses"] == 200 + 350 + 54 + 100 + 25
    assert movia[1]["units"] == 2
    region = rows(
        engine, "SELECT * FROM fleet_share WHERE scope = '1084' ORDER BY date"
    )
    # The region counts Ballerup and the region's contract, not Roskilde.
    assert [r["total_buses"] for r in region] == [650, 660]
    assert region[1]["zero_emission_buses"] == 350 + 10

    fossil_free = progress["test-movia-fossil-free"]
    assert fossil_free["unit"] == "%"
    assert (fossil_free["baseline_year"], fossil_free["latest_year"]) == (2022, 2024)
    assert fossil_free["latest_value"] == pytest.approx(100 * 729 / 1100)
    assert fossil_free["status"] == "on_track"
    zero = progress["test-region-zero-emission"]
    assert zero["latest_value"] == pytest.approx(100 * 360 / 660)
    # Status changes reach the outbox and are published to `target-status`
    # (a target may pass `no_data` first if it is read before the figures).
    published = wait_for(
        lambda: rows(
            engine,
            "SELECT DISTINCT ON (target_id) target_id, status, published_at "
            "FROM target_status_change WHERE target_id LIKE 'test-%' "
            "ORDER BY target_id, id DESC",
        ),
        lambda r: len(r) == 2 and all(c["published_at"] for c in r),
    )
    assert {c["target_id"]: c["status"] for c in published} == {
        t: p["status"] for t, p in progress.items()
    }


def test_restatement_uses_new_counts_keeps_old_row_and_duplicate_counts_once(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("fleet")
    first = fleet_event(
        "movia",
        "2024-12-31",
        garage="Ballerup",
        diesel=80,
        battery_electric=20,
        reported_at="2025-01-10T08:00:00+00:00",
    )
    producer.send("fleet_status", first)
    producer.send("fleet_status", first)
    producer.flush()
    wait_for(
        lambda: _share(engine, "movia", "zero_emission_share"),
        lambda v: v == pytest.approx(20.0),
    )

    restated = fleet_event(
        "movia",
        "2024-12-31",
        garage="Ballerup",
        diesel=50,
        battery_electric=50,
        reported_at="2025-03-01T08:00:00+00:00",
    )
    # An older report of the same day, arriving late, does not undo it.
    late_old = fleet_event(
        "movia",
        "2024-12-31",
        garage="Ballerup",
        diesel=100,
        reported_at="2025-01-02T08:00:00+00:00",
    )
    for event in (restated, first, late_old):
        producer.send("fleet_status", event)
    producer.flush()
    kept = wait_for(
        lambda: rows(
            engine,
            "SELECT event_id, diesel, battery_electric "
            "FROM fleet_status ORDER BY reported_at",
        ),
        lambda r: len(r) == 3,
    )
    assert [(r["diesel"], r["battery_electric"]) for r in kept] == [
        (100, 0),
        (80, 20),
        (50, 50),
    ]
    wait_for(
        lambda: _share(engine, "movia", "zero_emission_share"),
        lambda v: v == pytest.approx(50.0),
    )
    # One row: Movia on one date (no municipality code, so not in the region).
    assert _count(engine, "fleet_share") == 1
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM fleet_status WHERE event_id = :e",
            e=first["event_id"],
        )
        == 1
    )


def test_bad_fleet_events_go_to_the_dead_letter_table_with_the_reason(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("fleet", "deadletter")
    no_unit = fleet_event(
        "movia", "2025-01-31", garage="x", diesel=1, event_id="no-unit"
    )
    del no_unit["garage"]
    negative = fleet_event(
        "movia", "2025-01-31", garage="G", diesel=-3, event_id="negative"
    )
    future = fleet_event(
        "movia",
        "2025-02-28",
        garage="G",
        diesel=1,
        reported_at="2025-02-01T08:00:00+00:00",
        event_id="future",
    )
    for event in (no_unit, negative, future):
        producer.send_raw("fleet_status", json.dumps(event).encode())
    producer.send_raw("fleet_status", b"{not json")
    producer.send("fleet_status", fleet_event("movia", "2025-01-31", garage="G", hvo=1))
    producer.flush()

    letters = wait_for(
        lambda: rows(engine, "SELECT * FROM dead_letter"), lambda r: len(r) == 4
    )
    by_event = {r["event_id"]: r for r in letters}
    assert by_event["no-unit"]["field"] == "contract"
    assert "give at least one of contract, garage" in by_event["no-unit"]["reason"]
    assert by_event["negative"]["field"] == "buses.diesel"
    assert "minimum" in by_event["negative"]["reason"]
    assert by_event["future"]["field"] == "date"
    assert by_event[None]["field"] == "$"
    assert all(
        r["kind"] == "fleet_status" and r["rejected_by"] == "fleet" for r in letters
    )
    # The good event beside them is stored and counted; the bad ones are not.
    wait_for(lambda: _share(engine, "movia", "fossil_free_share"), lambda v: v == 100.0)
    assert _count(engine, "fleet_status") == 1
