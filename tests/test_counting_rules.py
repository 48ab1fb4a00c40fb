"""The counting rules the review left open, each on the database and offline.

Every test sends the same events (mostly from the importers, as
`klimapuls import` would) through the services' handlers on a real
database and through the offline fold, and expects the same answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.core.batch import Incoming
from klimapuls.core.identity import Verdict
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.targets.handlers import TargetsHandler
from tests.fleet.factories import fleet_event
from tests.helpers import rows, scalar
from tests.parity import (
    database_view,
    fold_view,
    imported,
    through_database,
    through_fold,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
T1 = datetime(2025, 6, 10, 9, tzinfo=UTC)

# Two versions of one file per layout: A, and B correcting one figure.
FILES = {
    "co2-account": (
        "Kommune;År;Sektor;Ton CO2e;Opgjort\n"
        "København;2022;Energi;{};2024-05-01\n"
        "København;2022;Transport;50;2024-05-01\n",
        ("100", "120"),
    ),
    "fleet-list": (
        "vognnummer,operatør,garage,drivmiddel,kommune,dato\n"
        "1001,Movia,Ballerup,el,Ballerup,2025-04-01\n"
        "1002,Movia,Ballerup,{},Ballerup,2025-04-01\n",
        ("diesel", "el"),
    ),
    "traffic-count": (
        "site,kommune,time,mode,count\n"
        "vd-1,Frederiksberg,2025-06-02 07:00,cykel,{}\n"
        "vd-1,Frederiksberg,2025-06-02 08:00,cykel,40\n",
        ("100", "110"),
    ),
    "vip-status": (
        "project,tovholdere,status_oct_2022\nRing 5 Syd,Ballerup,{}\n",
        ("Modtaget", "Ja"),
    ),
}
TABLES = {
    "co2-account": "co2_account",
    "fleet-list": "fleet_status",
    "traffic-count": "mobility_count",
    "vip-status": "initiative_status_report",
}


def _imports(kind: str, *versions: int) -> list[tuple[str, dict[str, object]]]:
    text, cells = FILES[kind]
    return [
        event
        for n, version in enumerate(versions)
        for event in imported(kind, text.format(cells[version]), T1 + timedelta(n))
    ]


@pytest.mark.parametrize("kind", sorted(FILES))
def test_a_correction_back_to_earlier_content_makes_it_current_again(
    engine: Engine, kind: str
) -> None:
    events = _imports(kind, 0, 1, 0)  # file A, then B, then A again
    fold, offline = through_fold(events, NOW)
    assert through_database(engine, events, NOW) == offline
    assert database_view(engine) == fold_view(fold)
    # A is current again: the same as after importing A alone.
    only_a, _ = through_fold(_imports(kind, 0), NOW)
    mine = fold_view(fold)
    theirs = fold_view(only_a)
    for name in ("figures", "fleet", "trips"):
        assert mine[name] == theirs[name]
    assert [r[:2] for r in mine["reports"]] == [r[:2] for r in theirs["reports"]]
    # The changed fact is stored three times, an unchanged one once.
    rows_per_file = 1 if kind in ("vip-status", "fleet-list") else 2
    stored = scalar(engine, f"SELECT count(*) FROM {TABLES[kind]}")
    assert stored == rows_per_file + 2


@pytest.mark.parametrize("kind", sorted(FILES))
def test_the_same_file_imported_twice_stores_nothing_new(
    engine: Engine, kind: str
) -> None:
    events = _imports(kind, 0, 0, 1, 1)  # A twice, then B twice
    fold, offline = through_fold(events, NOW)
    assert through_database(engine, events, NOW) == offline
    half = len(events) // 4
    assert set(offline[half : 2 * half]) == {Verdict.DUPLICATE}
    assert set(offline[3 * half :]) == {Verdict.DUPLICATE}
    assert database_view(engine) == fold_view(fold)


RING4 = "Udvidelse af Motorring 4 ved København (sydlig)"
RING4_ID = "udvidelse-af-motorring-4-ved-koebenhavn-sydlig"
TABLE_2023 = (
    "project,tovholdere,tovholder fra,status_oct_2022,status_oct_2023\n"
    f"{RING4},Ishøj,2023-05-01,Modtaget,Ja\n"
)
TABLE_2024 = (
    "project,tovholdere,tovholder fra,status_oct_2022,status_oct_2023,"
    "status_oct_2024\n"
    f"{RING4},Ishøj;Klimaalliancen,2024-09-01,Modtaget,Ja,På sporet\n"
)


def test_a_vip_table_with_more_rounds_keeps_the_dates_of_older_handovers(
    engine: Engine,
) -> None:
    first = imported("vip-status", TABLE_2023, datetime(2023, 10, 20, tzinfo=UTC))
    later = imported("vip-status", TABLE_2024, datetime(2024, 10, 20, tzinfo=UTC))
    fold, offline = through_fold(first + later, NOW)
    assert through_database(engine, first + later, NOW) == offline
    assert database_view(engine) == fold_view(fold)
    assert fold_view(fold)["handovers"][RING4_ID] == [
        ("2023-10", "2023-05-01", ["Høje-Taastrup"], ["Ishøj"]),
        ("2024-10", "2024-09-01", ["Ishøj"], ["Ishøj", "Klimaalliancen"]),
    ]
    # The first table alone dated its hand-over the same way.
    alone, _ = through_fold(first, NOW)
    assert fold_view(alone)["handovers"][RING4_ID] == [
        ("2023-10", "2023-05-01", ["Høje-Taastrup"], ["Ishøj"])
    ]


def test_the_repeated_autumn_hour_is_read_in_order_or_by_its_offset(
    engine: Engine,
) -> None:
    text = (
        "site,kommune,time,mode,count,offset\n"
        "vd-1,147,2025-10-26 01:00,bil,10,\n"
        "vd-1,147,2025-10-26 02:00,bil,20,\n"  # the first 02:00 (summer time)
        "vd-1,147,2025-10-26 02:00,bil,30,\n"  # the repeated 02:00 (winter time)
        "vd-1,147,2025-10-26 03:00,bil,40,\n"
        "vd-2,147,2025-10-26 02:00,bil,5,vintertid\n"
        "vd-2,147,2025-10-26 02:00,bil,6,+02:00\n"
    )
    events = imported("traffic-count", text, T1.replace(year=2025, month=11))
    assert [e["interval_start"] for _, e in events] == [
        "2025-10-26T01:00:00+02:00",
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:00:00+01:00",
        "2025-10-26T03:00:00+01:00",
        "2025-10-26T02:00:00+01:00",
        "2025-10-26T02:00:00+02:00",
    ]
    # Every interval is one hour long, across the change too.
    assert events[1][1]["interval_end"] == "2025-10-26T02:00:00+01:00"
    fold, offline = through_fold(events, NOW)
    assert through_database(engine, events, NOW) == offline == [Verdict.NEW] * 6
    assert database_view(engine) == fold_view(fold)
    assert sum(t.trips for t in fold.facts().trips) == 111
    assert (
        scalar(engine, "SELECT count(*) FROM mobility_hourly WHERE site_id = 'vd-1'")
        == 4
    )


def test_a_time_in_the_skipped_spring_hour_is_an_error_naming_the_column() -> None:
    from klimapuls.importers import convert

    text = "site,kommune,time,mode,count\nvd-1,147,2025-03-30 02:30,bil,1\n"
    [item] = convert("traffic-count", text, lambda kind, event: event)
    [issue] = item.issues
    assert issue.column == "time" and "does not exist in Danish time" in issue.reason


def test_a_bus_under_two_garages_on_one_date_is_refused_not_counted_twice(
    engine: Engine,
) -> None:
    from klimapuls.importers import convert
    from klimapuls.producer.readers import complete_envelope

    text = (
        "vognnummer,operatør,garage,drivmiddel,kommune,dato\n"
        "1001,Movia,Ballerup,el,Ballerup,2025-04-01\n"
        "1002,Movia,Ballerup,diesel,Ballerup,2025-04-01\n"
        "1001,Movia,Gladsaxe,el,Gladsaxe,2025-04-01\n"
    )
    items = list(
        convert(
            "fleet-list",
            text,
            lambda kind, event: complete_envelope(kind, event, "pytest", T1),
        )
    )
    [issue] = [i for item in items for i in item.issues]
    assert (issue.row, issue.column) == (4, "vognnummer")
    assert "already listed under 'Ballerup'" in issue.reason and "row 2" in issue.reason
    events = [(item.kind, item.event) for item in items if item.event is not None]
    fold, offline = through_fold(events, NOW)
    assert through_database(engine, events, NOW) == offline
    assert database_view(engine) == fold_view(fold)
    region = [p for p in fold.facts().fleet]
    assert sum(s.buses.total for s in region) == 2


def _monthly(site: str, code: str, mode: str, year: int, months: range, n: int):
    from tests.mobility.factories import count_event

    return [
        (
            "mobility_count",
            count_event(
                site,
                mode,
                f"{year}-{m:02d}-10T06:00:00+00:00",
                n,
                municipality_code=code,
            ),
        )
        for m in months
    ]


YEAR = range(1, 13)


def test_the_region_counts_a_year_only_when_every_counting_municipality_covers_it(
    engine: Engine,
) -> None:
    from klimapuls.core.mobility import modal_splits
    from tests.parity import database_progress, fold_progress

    # Frederiksberg counts January only, Gentofte February to December:
    # together every month, but neither municipality has a whole year.
    events = (
        _monthly("a", "147", "bike", 2024, range(1, 2), 500)
        + _monthly("b", "157", "bike", 2024, range(2, 13), 300)
        + _monthly("b", "157", "car", 2024, range(2, 13), 400)
    )
    fold, offline = through_fold(events, NOW)
    assert through_database(engine, events, NOW) == offline
    assert database_progress(engine, NOW.date()) == fold_progress(fold, NOW.date())
    [region] = [
        s for s in modal_splits(fold.facts().trips, NOW.date()) if s.scope == "1084"
    ]
    assert (region.months_covered, region.counted) == (0, False)
    trips = next(
        p
        for p in fold_progress(fold, NOW.date())
        if p["target_id"] == "sustainable-trips-2035"
    )
    assert trips["latest_year"] is None  # no counted year yet


def test_bike_trips_compare_like_with_like_when_a_site_joins_mid_series(
    engine: Engine,
) -> None:
    from tests.parity import database_progress, fold_progress

    events = (
        _monthly("old", "147", "bike", 2023, YEAR, 100)
        + _monthly("old", "147", "bike", 2024, YEAR, 105)
        + _monthly("old", "147", "bike", 2025, YEAR, 110)
        # A busy new site from July 2024: it must not look like growth.
        + _monthly("new", "147", "bike", 2024, range(7, 13), 1000)
        + _monthly("new", "147", "bike", 2025, YEAR, 1000)
    )
    fold, offline = through_fold(events, NOW)
    assert through_database(engine, events, NOW) == offline
    database = database_progress(engine, NOW.date())
    assert database == fold_progress(fold, NOW.date())
    bike = next(p for p in database if p["target_id"] == "bike-trips-2030")
    # 2023: 1,200 trips; 2024: +5 % at the old site; 2025: +4.8 % there.
    assert bike["baseline_year"] == 2023 and bike["baseline_value"] == 1200
    assert bike["latest_year"] == 2025
    assert bike["latest_value"] == pytest.approx(1200 * 1260 / 1200 * 1320 / 1260)


def test_the_bike_panel_reads_the_comparable_series_its_owner_keeps(
    engine: Engine,
) -> None:
    from sqlalchemy import text

    from klimapuls.boards import all_boards
    from klimapuls.boards.macros import TimeRange, expand
    from klimapuls.core.progress import MeasuredSeries, target_series
    from tests.helpers import rows

    events = (
        _monthly("old", "147", "bike", 2023, YEAR, 100)
        + _monthly("old", "147", "bike", 2024, YEAR, 105)
        + _monthly("new", "147", "bike", 2024, range(7, 13), 1000)
    )
    fold, offline = through_fold(events, NOW)
    assert through_database(engine, events, NOW) == offline
    core = {
        (target.target_id, point.year): point.value
        for target, points in target_series(MeasuredSeries(fold.facts(), NOW.date()))
        for point in points
    }
    stored = {
        (r["target_id"], r["year"]): r["value"]
        for r in rows(engine, "SELECT * FROM board.target_series")
    }
    assert stored == core  # the one owner keeps what the core measures
    # 2024 compares the old site only (+5 %), not 1,260 + 6,000 trips.
    assert stored[("bike-trips-2030", 2024)] == pytest.approx(1200 * 1.05)
    board = next(b for b in all_boards() if b.uid == "klimapuls-mobility")
    [query] = [q for q in board.queries if q.panel_title.startswith("Cykelture pr. år")]
    assert "board.target_series" in query.raw_sql
    with engine.connect() as conn:
        shown = conn.execute(
            text(expand(query.raw_sql, TimeRange.of(board.json, NOW), {}))
        ).all()
    assert {r[0].year: r[1] for r in shown if r[1] is not None} == {
        2023: pytest.approx(1200),
        2024: pytest.approx(1260),
    }


def test_the_migration_creates_the_target_series_table_of_the_model(
    engine: Engine,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from klimapuls.storage.models import TargetSeriesRow

    mine = MetaData()
    TargetSeriesRow.__table__.to_metadata(mine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or name in mine.tables
                ),
                "compare_server_default": True,
            },
        )
        assert compare_metadata(context, mine) == []


def test_a_bus_under_two_garages_in_two_files_is_refused_not_counted_twice(
    engine: Engine,
) -> None:
    # Ballerup's list, then Gladsaxe's naming bus 1001 on the same date: the
    # events carry the bus ids, so Gladsaxe's is refused on both paths with
    # the same reason, and the fleet counts bus 1001 once.
    header = "vognnummer,operatør,garage,drivmiddel,kommune,dato\n"
    ballerup = imported(
        "fleet-list",
        header
        + "1001,Movia,Ballerup,el,Ballerup,2025-04-01\n"
        + "1002,Movia,Ballerup,diesel,Ballerup,2025-04-01\n",
        T1,
    )
    gladsaxe = imported(
        "fleet-list",
        header
        + "1001,Movia,Gladsaxe,el,Gladsaxe,2025-04-01\n"
        + "1003,Movia,Gladsaxe,el,Gladsaxe,2025-04-01\n",
        T1 + timedelta(hours=1),
    )
    assert ballerup[0][1]["bus_ids"] == ["1001", "1002"]
    events = ballerup + gladsaxe
    fold, offline = through_fold(events, NOW)
    assert offline == [Verdict.NEW, Verdict.REJECTED]
    refused = fold.judge("fleet_status", gladsaxe[0][1])
    assert refused.issue is not None and refused.issue.field == "bus_ids"
    assert refused.issue.reason == (
        "bus '1001' of 'movia' is already listed under 'Ballerup' on "
        "2025-04-01; a bus belongs to one contract/garage on a date, or it "
        "counts twice"
    )
    handler = FleetHandler(engine, lambda: NOW, name="fleet")
    first = handler.handle(_incoming(ballerup))
    second = handler.handle(_incoming(gladsaxe))
    assert first.verdicts + second.verdicts == offline
    (letter,) = second.dead_letters
    assert (letter.field, letter.reason) == ("bus_ids", str(refused.error))
    TargetsHandler(engine, lambda: NOW).refresh()
    assert database_view(engine) == fold_view(fold)
    assert [s.garage for s in fold.facts().fleet] == ["Ballerup"]
    assert (
        scalar(engine, "SELECT total_buses FROM fleet_share WHERE scope = '1084'") == 2
    )
    assert (
        scalar(
            engine,
            "SELECT string_agg(garage, ',') FROM fleet_bus WHERE bus_id = '1001'",
        )
        == "Ballerup"
    )


def test_a_garage_restating_its_list_frees_a_bus_for_another_garage(
    engine: Engine,
) -> None:
    # Ballerup lists 1001, then restates its list without it; Gladsaxe may
    # then list 1001, and Ballerup's first list re-sent stays a duplicate.
    header = "vognnummer,operatør,garage,drivmiddel,kommune,dato\n"
    first = imported(
        "fleet-list", header + "1001,Movia,Ballerup,el,Ballerup,2025-04-01\n", T1
    )
    restated = imported(
        "fleet-list",
        header + "1002,Movia,Ballerup,el,Ballerup,2025-04-01\n",
        T1 + timedelta(hours=1),
    )
    gladsaxe = imported(
        "fleet-list",
        header + "1001,Movia,Gladsaxe,el,Gladsaxe,2025-04-01\n",
        T1 + timedelta(hours=2),
    )
    events = first + restated + gladsaxe + first
    fold, offline = through_fold(events, NOW)
    assert offline == [Verdict.NEW, Verdict.NEW, Verdict.NEW, Verdict.DUPLICATE]
    assert [v for e in events for v in through_database(engine, [e], NOW)] == offline
    assert database_view(engine) == fold_view(fold)
    assert scalar(engine, "SELECT count(*) FROM fleet_bus") == 2


def _incoming(events: list[tuple[str, dict[str, object]]]) -> list[Incoming]:
    return [
        Incoming(kind, json.dumps(event).encode(), f"t:0:{i}")
        for i, (kind, event) in enumerate(events)
    ]


def test_bus_lists_follow_each_garages_newest_report_on_both_paths(
    engine: Engine,
) -> None:
    # Ballerup's newer list arrives first, its older one late: the newer
    # list holds, so 1001 is free for Gladsaxe and 1002 is not; one batch
    # on the database, the same verdicts and facts offline.
    def listed(garage: str, hours: int, *buses: str) -> tuple[str, dict[str, Any]]:
        at = (T1 + timedelta(hours=hours)).isoformat()
        event = fleet_event(
            "movia", "2025-04-01", garage=garage, reported_at=at, diesel=len(buses)
        )
        return ("fleet_status", {**event, "bus_ids": list(buses)})

    events = [
        listed("Ballerup", 2, "1002"),
        listed("Ballerup", 1, "1001", "1002"),
        listed("Gladsaxe", 3, "1001"),
        listed("Gladsaxe", 4, "1002"),
    ]
    fold, offline = through_fold(events, NOW)
    assert offline == [Verdict.NEW, Verdict.NEW, Verdict.NEW, Verdict.REJECTED]
    assert through_database(engine, events, NOW) == offline
    assert database_view(engine) == fold_view(fold)
    assert [
        (r["garage"], r["bus_id"])
        for r in rows(engine, "SELECT * FROM fleet_bus ORDER BY bus_id")
    ] == [("Gladsaxe", "1001"), ("Ballerup", "1002")]
