"""The CO2 pipeline end to end: events on the real broker -> rows in PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from klimapuls.core.reference import municipality_codes
from klimapuls.producer import EventProducer
from klimapuls.stack.runner import Stack
from tests.helpers import co2_event, rows, scalar, target_event, wait_for

pytestmark = pytest.mark.timeout(180)

# Every municipality: 1000 t in 1990, then 500, 450, 400, 350, 300 in 2019-2023.
PER_MUNICIPALITY = {
    1990: 1000.0,
    2019: 500.0,
    2020: 450.0,
    2021: 400.0,
    2022: 350.0,
    2023: 300.0,
}


def _send_region(producer: EventProducer) -> int:
    count = 0
    for code in municipality_codes():
        for year, tonnes in PER_MUNICIPALITY.items():
            producer.send("co2_account", co2_event(code, year, "energy", tonnes))
            count += 1
    producer.flush()
    return count


def _count(engine: Engine, table: str) -> int:
    return int(scalar(engine, f"SELECT count(*) FROM {table}"))


def test_accounts_in_give_rows_series_and_progress_out(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("co2", "targets", "deadletter")
    sent = _send_region(producer)

    wait_for(lambda: _count(engine, "co2_account"), lambda n: n == sent)
    region = wait_for(
        lambda: rows(
            engine, "SELECT * FROM emission_series WHERE scope = '1084' ORDER BY year"
        ),
        lambda r: len(r) == 6 and r[-1]["tonnes_co2e"] == 29 * 300.0,
    )
    assert [r["year"] for r in region] == [1990, 2019, 2020, 2021, 2022, 2023]
    assert all(r["reported"] == 29 and r["complete"] for r in region)

    # The targets service recomputes when the co2 service announces the change.
    wait_for(
        lambda: scalar(
            engine,
            "SELECT latest_value FROM target_progress "
            "WHERE target_id = 'region-co2-2030'",
        ),
        lambda v: v == 29 * 300.0,
    )
    progress = {
        r["target_id"]: r for r in rows(engine, "SELECT * FROM target_progress")
    }
    p = progress["region-co2-2030"]
    # E_b = 29,000 t; E_T = 4,350 t; P(2023) = 29,000 - 24,650 * 33/40 = 8,663.75 t.
    assert p["baseline_value"] == pytest.approx(29_000)
    assert p["target_value"] == pytest.approx(4_350)
    assert p["latest_year"] == 2023
    assert p["latest_value"] == pytest.approx(8_700)
    assert p["path_value"] == pytest.approx(8_663.75)
    assert p["gap_to_path"] == pytest.approx(36.25)
    assert p["reduction_achieved_pct"] == pytest.approx(70.0)
    # Above the path, but the trend (-1,450 t a year) reaches the goal in time.
    assert p["forecast_value"] == pytest.approx(0.0)
    assert p["status"] == "at_risk"
    # Net zero by 2045: P(2023) = 29,000 * (1 - 33/55) = 11,600 t, so below it.
    assert progress["region-neutral-2045"]["status"] == "on_track"
    # The national -70 % line, drawn against the regional series: already met.
    assert progress["dk-climate-law-2030"]["status"] == "achieved"


def test_bad_events_go_to_the_dead_letter_table_with_the_reason(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("co2", "deadletter")
    bad_code = co2_event("999", 2020, "energy", 10.0, event_id="bad-code")
    negative = co2_event("101", 2020, "energy", -1.0, event_id="negative")
    early = co2_event("101", 2020, "energy", 1.0, "2020-06-01", event_id="too-early")
    for event in (bad_code, negative, early):
        producer.send_raw("co2_account", json.dumps(event).encode())
    producer.send_raw("co2_account", b"\xff not json")
    producer.send("co2_account", co2_event("101", 2020, "energy", 5.0))
    producer.flush()

    letters = wait_for(
        lambda: rows(engine, "SELECT * FROM dead_letter ORDER BY field"),
        lambda r: len(r) == 4,
    )
    by_event = {r["event_id"]: r for r in letters}
    assert by_event["bad-code"]["field"] == "municipality_code"
    assert "999" in by_event["bad-code"]["reason"]
    assert by_event["negative"]["field"] == "tonnes_co2e"
    assert "minimum" in by_event["negative"]["reason"]
    assert by_event["too-early"]["field"] == "vintage"
    assert by_event[None]["field"] == "$"
    assert "not valid JSON" in by_event[None]["reason"]
    assert all(
        r["kind"] == "co2_account" and r["rejected_by"] == "co2" for r in letters
    )
    assert by_event["negative"]["payload"] == json.dumps(negative)
    # The good event beside them is stored; the bad ones are not.
    wait_for(lambda: _count(engine, "co2_account"), lambda n: n == 1)


def test_the_same_event_twice_is_counted_once(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("co2", "deadletter")
    event = co2_event("147", 2021, "transport", 1234.5)
    producer.send("co2_account", event)
    producer.send("co2_account", event)
    producer.flush()
    wait_for(
        lambda: scalar(
            engine,
            "SELECT tonnes_co2e FROM emission_series "
            "WHERE scope = '147' AND year = 2021",
        ),
        lambda v: v is not None,
    )
    # A replay later (a redelivery after a crash) changes nothing either.
    producer.send("co2_account", event)
    marker = co2_event("147", 2021, "energy", 1.0)
    producer.send("co2_account", marker)
    producer.flush()
    wait_for(lambda: _count(engine, "co2_account"), lambda n: n == 2)
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM co2_account WHERE event_id = :e",
            e=event["event_id"],
        )
        == 1
    )
    # The series follows within a derive window.
    wait_for(
        lambda: scalar(
            engine,
            "SELECT tonnes_co2e FROM emission_series "
            "WHERE scope = '147' AND year = 2021",
        ),
        lambda v: v == pytest.approx(1235.5),
    )
    assert _count(engine, "dead_letter") == 0


def test_a_restated_year_uses_the_new_figure_and_keeps_the_old(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("co2", "deadletter")
    first = co2_event("101", 2022, "energy", 500.0, "2023-05-01")
    restated = co2_event("101", 2022, "energy", 400.0, "2024-05-01")
    producer.send("co2_account", first)
    producer.flush()
    wait_for(
        lambda: scalar(
            engine,
            "SELECT tonnes_co2e FROM emission_series "
            "WHERE scope = '101' AND year = 2022",
        ),
        lambda v: v == 500.0,
    )
    producer.send("co2_account", restated)
    producer.flush()
    wait_for(
        lambda: scalar(
            engine,
            "SELECT tonnes_co2e FROM emission_series "
            "WHERE scope = '101' AND year = 2022",
        ),
        lambda v: v == 400.0,
    )
    # An older vintage arriving late does not undo the restatement.
    late_old = co2_event(
        "101", 2022, "energy", 999.0, "2023-01-15", event_id="late-old-vintage"
    )
    producer.send("co2_account", late_old)
    producer.flush()
    kept = wait_for(
        lambda: rows(
            engine,
            "SELECT vintage::text, tonnes_co2e FROM co2_account "
            "WHERE municipality_code = '101' ORDER BY vintage",
        ),
        lambda r: len(r) == 3,
    )
    assert [(r["vintage"], float(r["tonnes_co2e"])) for r in kept] == [
        ("2023-01-15", 999.0),
        ("2023-05-01", 500.0),
        ("2024-05-01", 400.0),
    ]
    assert (
        scalar(
            engine,
            "SELECT tonnes_co2e FROM emission_series WHERE scope = '101' "
            "AND year = 2022",
        )
        == 400.0
    )


def test_a_reused_event_id_with_other_content_is_dead_lettered(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("co2", "targets", "deadletter")
    original = co2_event("151", 2021, "waste", 10.0, event_id="reused-id")
    producer.send("co2_account", original)
    producer.flush()
    wait_for(lambda: _count(engine, "co2_account"), lambda n: n == 1)
    producer.send("co2_account", {**original, "tonnes_co2e": 99.0})
    producer.send("target", target_event("custom-2030", scope="151"))
    producer.flush()
    letter = wait_for(
        lambda: rows(engine, "SELECT * FROM dead_letter"), lambda r: len(r) == 1
    )[0]
    assert letter["field"] == "event_id"
    assert "different content" in letter["reason"]
    assert scalar(engine, "SELECT tonnes_co2e FROM co2_account") == 10.0
    wait_for(
        lambda: scalar(
            engine, "SELECT status FROM target_progress WHERE target_id = 'custom-2030'"
        ),
        lambda s: s == "no_data",
    )
