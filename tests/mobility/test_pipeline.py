"""The mobility pipeline end to end: counts on the real broker -> PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.producer import EventProducer
from klimapuls.stack.runner import Stack
from tests.helpers import rows, scalar, wait_for
from tests.mobility.factories import (
    BIKE_TRIPS,
    SUSTAINABLE_TRIPS,
    bike_trips_target,
    count_event,
    sustainable_trips_target,
)

pytestmark = pytest.mark.timeout(180)

# Trips per month by mode; the 2022 split is the region's 2021-22 one
# (car 44 %, bike 21 %, walk 24 %, public 11 %: 56 % sustainable).
MONTHLY = {
    2022: {"car": 440, "bike": 210, "walk": 240, "bus": 60, "train": 30, "metro": 20},
    2023: {"car": 420, "bike": 205, "walk": 255, "bus": 60, "train": 40, "metro": 20},
    2024: {"car": 400, "bike": 200, "walk": 270, "bus": 60, "train": 50, "metro": 20},
}
# Roads, bike lanes and pavements in København; lines through Frederiksberg.
MUNICIPALITY = {
    "car": "101",
    "bike": "101",
    "walk": "101",
    "bus": "147",
    "train": "147",
    "metro": "147",
}


def _year_of_counts() -> list[dict[str, Any]]:
    events = []
    for year, by_mode in MONTHLY.items():
        for month in range(1, 13):
            start = f"{year}-{month:02d}-15T06:00:00+00:00"
            for mode, trips in by_mode.items():
                site = f"site-{mode}"
                code = MUNICIPALITY[mode]
                if (year, month, mode) == (2022, 1, "car"):
                    # Two directions in the same hour add up in the rollups.
                    events.append(
                        count_event(
                            site,
                            mode,
                            start,
                            200,
                            municipality_code=code,
                            direction="out",
                        )
                    )
                    trips -= 200
                events.append(
                    count_event(site, mode, start, trips, municipality_code=code)
                )
    return events


def _count(engine: Engine, table: str) -> int:
    return int(scalar(engine, f"SELECT count(*) FROM {table}"))


def test_counts_in_give_rollups_modal_split_and_progress_out(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("mobility", "targets")
    producer.send("target", sustainable_trips_target())
    producer.send("target", bike_trips_target())
    events = _year_of_counts()
    for event in events:
        producer.send("mobility_count", event)
    producer.flush()

    wait_for(lambda: _count(engine, "mobility_count"), lambda n: n == len(events))
    # Rollups follow within a derive window, progress within a notice window:
    # wait for every count to be rolled up, then for a recompute after that.
    wait_for(
        lambda: scalar(engine, "SELECT coalesce(sum(counts), 0) FROM mobility_hourly"),
        lambda n: n == len(events),
    )
    rolled_up = scalar(engine, "SELECT now()")
    progress = wait_for(
        lambda: {
            r["target_id"]: r
            for r in rows(
                engine,
                "SELECT * FROM target_progress WHERE target_id IN (:a, :b) "
                "AND computed_at > :t",
                a=SUSTAINABLE_TRIPS,
                b=BIKE_TRIPS,
                t=rolled_up,
            )
        },
        lambda p: len(p) == 2,
    )

    # Hour, day (Copenhagen) and year rollups of the current counts.
    assert rows(
        engine,
        "SELECT mode, trips, counts FROM mobility_hourly "
        "WHERE bucket = '2022-01-15T06:00:00Z' AND mode = 'car'",
    ) == [{"mode": "car", "trips": 440, "counts": 2}]
    assert (
        scalar(
            engine,
            "SELECT trips FROM mobility_daily WHERE mode = 'walk' "
            "AND bucket = '2024-06-15T00:00:00+02:00'",
        )
        == 270
    )
    assert rows(
        engine,
        "SELECT municipality_code, trips, month_mask "
        "FROM mobility_yearly WHERE mode = 'bike' "
        "ORDER BY bucket",
    ) == [
        {"municipality_code": "101", "trips": 12 * t, "month_mask": 4095}
        for t in (210, 205, 200)
    ]

    # Modal split per year: region and municipalities.
    split = {
        (r["scope"], r["year"], r["mode"]): r["share_pct"]
        for r in rows(engine, "SELECT * FROM mobility_modal_split")
    }
    assert split[("1084", 2022, "car")] == pytest.approx(44.0)
    assert split[("1084", 2024, "walk")] == pytest.approx(27.0)
    assert split[("147", 2024, "train")] == pytest.approx(100 * 50 / 130)
    years = {
        r["year"]: r
        for r in rows(engine, "SELECT * FROM mobility_year WHERE scope = '1084'")
    }
    assert [years[y]["sustainable_share_pct"] for y in (2022, 2023, 2024)] == (
        pytest.approx([56.0, 58.0, 60.0])
    )
    assert all(years[y]["counted"] and years[y]["months_covered"] == 12 for y in years)

    # 2/3 by 2035 from 56 % in 2022: the path is at 57.6 % in 2024; 60 % is above
    # it and the trend (+2 points a year) gets there.
    share = progress[SUSTAINABLE_TRIPS]
    assert share["unit"] == "%"
    assert share["baseline_value"] == pytest.approx(56.0)
    assert share["latest_value"] == pytest.approx(60.0)
    assert share["path_value"] == pytest.approx(56 + (200 / 3 - 56) * 2 / 13)
    assert share["status"] == "on_track"
    # +20 % bike trips by 2030 from 2,520 in 2022: they fall, so off track.
    bike = progress[BIKE_TRIPS]
    assert bike["target_value"] == pytest.approx(3024)
    assert bike["latest_value"] == pytest.approx(2400)
    assert bike["status"] == "off_track"
    # Statuses may pass through others while batches arrive; the last logged
    # change (what alerts saw last) is the final status.
    last = rows(
        engine,
        "SELECT DISTINCT ON (target_id) target_id, status "
        "FROM target_status_change WHERE target_id LIKE 'test-%' "
        "ORDER BY target_id, id DESC",
    )
    assert last == [
        {"target_id": BIKE_TRIPS, "status": "off_track"},
        {"target_id": SUSTAINABLE_TRIPS, "status": "on_track"},
    ]


def test_corrections_restate_duplicates_count_once_and_bad_counts_dead_letter(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("mobility", "deadletter")
    start = "2025-03-10T08:00:00+00:00"
    first = count_event("bike-7", "bike", start, 100)
    producer.send("mobility_count", first)
    producer.flush()
    hourly = "SELECT trips FROM mobility_hourly WHERE site_id = 'bike-7'"
    wait_for(lambda: scalar(engine, hourly), lambda v: v == 100)

    corrected = count_event(
        "bike-7",
        "bike",
        start,
        120,
        revision=1,
        reported_at="2026-04-01T00:00:00+02:00",
    )
    bad_interval = count_event("bike-7", "bike", start, 5, event_id="bad-interval")
    bad_interval["interval_end"] = "2025-03-10T07:00:00+00:00"
    unknown_mode = count_event("tram-1", "tram", start, 5, event_id="unknown-mode")
    producer.send("mobility_count", corrected)
    producer.send("mobility_count", first)  # a redelivery: changes nothing
    producer.send("mobility_count", {**first, "count": 101})  # reused id
    for event in (bad_interval, unknown_mode):
        producer.send_raw("mobility_count", json.dumps(event).encode())
    producer.send_raw("mobility_count", b"{not json")
    producer.flush()

    wait_for(lambda: scalar(engine, hourly), lambda v: v == 120)
    kept = rows(
        engine,
        "SELECT count, revision, is_current FROM mobility_count ORDER BY revision",
    )
    assert kept == [
        {"count": 100, "revision": 0, "is_current": False},
        {"count": 120, "revision": 1, "is_current": True},
    ]
    assert scalar(engine, "SELECT trips FROM mobility_yearly") == 120
    letters = wait_for(
        lambda: rows(engine, "SELECT * FROM dead_letter"), lambda r: len(r) == 4
    )
    by_event = {(r["event_id"], r["field"]): r for r in letters}
    assert ("bad-interval", "interval_end") in by_event
    assert "'tram'" in by_event[("unknown-mode", "mode")]["reason"]
    assert "different content" in by_event[(first["event_id"], "event_id")]["reason"]
    assert "not valid JSON" in by_event[(None, "$")]["reason"]
    assert all(
        r["kind"] == "mobility_count" and r["rejected_by"] == "mobility"
        for r in letters
    )
    assert _count(engine, "mobility_count") == 2
