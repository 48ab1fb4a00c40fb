"""The counting rules the review left open, each on the database and offline.

Every test sends the same events (mostly from the importers, as
`klimapuls import` would) through the services' handlers on a real
database and through the offline fold, and expects the same answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from klimapuls.core.identity import Verdict
from tests.helpers import scalar
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
