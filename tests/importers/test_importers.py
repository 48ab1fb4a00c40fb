"""`klimapuls import`: municipality CSV files -> events, errors by row and column."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.importers import IMPORT_KINDS, ImportOptions, convert
from klimapuls.producer.readers import complete_envelope

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
VIP_TABLE = (
    ROOT
    / "services"
    / "klimapuls"
    / "core"
    / "data"
    / ("vip_infrastructure_status.csv")
)
NOW = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)


def envelope(kind: str, event: dict[str, Any]) -> dict[str, Any]:
    return complete_envelope(kind, event, "pytest", NOW)


def converted(
    kind: str, text: str, **options: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    events, issues = [], []
    for item in convert(kind, text, envelope, ImportOptions(**options)):
        if item.event is not None:
            events.append(item.event)
        issues.extend(str(i) for i in item.issues)
    return events, issues


def test_the_real_vip_table_gives_one_event_per_filled_cell() -> None:
    events, issues = converted("vip-status", VIP_TABLE.read_text("utf-8"))
    assert issues == []
    per_round: dict[str, int] = {}
    for e in events:
        per_round[e["round"]] = per_round.get(e["round"], 0) + 1
    assert per_round == {"2022-10": 39, "2023-10": 40}
    assert {e["status"] for e in events if e["round"] == "2022-10"} == {"received"}
    assert {e["status"] for e in events if e["round"] == "2023-10"} == {"confirmed"}
    ring4 = [
        e
        for e in events
        if e["initiative_id"] == "udvidelse-af-motorring-4-ved-koebenhavn-sydlig"
    ]
    # The table names who holds it now: that goes with the newest round.
    assert [(e["round"], e.get("tovholdere")) for e in ring4] == [
        ("2022-10", None),
        ("2023-10", ["Høje-Taastrup"]),
    ]
    assert ring4[0]["note"] == "tovholder passes to Ishøj"
    # Missing cells send nothing: missing reports are derived downstream.
    assert not [e for e in events if e["initiative_id"] == "pulje-til-stoej"]
    assert not [
        e
        for e in events
        if e["round"] == "2023-10"
        and e["initiative_name"].startswith("Afskaffelse af brugerbetaling")
    ]
    # Same file, same ids: importing twice stores each report once.
    again, _ = converted("vip-status", VIP_TABLE.read_text("utf-8"))
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]


def test_a_fleet_list_is_counted_per_contract_or_garage() -> None:
    events, issues = converted("fleet-list", (EXAMPLES / "fleet-list.csv").read_text())
    assert issues == []
    by_garage = {e["garage"]: e for e in events}
    assert by_garage["Ballerup"]["buses"] == {
        "battery_electric": 2,
        "diesel": 1,
        "hvo": 1,
    }
    assert by_garage["Ballerup"]["contract"] == "A23"
    assert by_garage["Ballerup"]["municipality_code"] == "151"
    assert by_garage["Hillerød"]["buses"] == {
        "battery_electric": 1,
        "biogas": 1,
        "hydrogen": 1,
    }
    assert all(e["operator"] == "movia" and e["date"] == "2025-04-01" for e in events)


def test_danish_numbers_names_and_local_times_are_read() -> None:
    co2, _ = converted("co2-account", (EXAMPLES / "co2-account.csv").read_text())
    assert co2[0]["municipality_code"] == "101"
    assert co2[0]["tonnes_co2e"] == 412345.5
    assert co2[4]["sector"] == "waste"
    counts, _ = converted("traffic-count", (EXAMPLES / "traffic-count.csv").read_text())
    assert counts[0]["interval_start"] == "2025-06-02T07:00:00+02:00"
    assert counts[0]["interval_end"] == "2025-06-02T08:00:00+02:00"
    assert counts[0]["mode"] == "bike" and counts[0]["site_kind"] == "bike_counter"


def test_a_site_file_gives_the_municipality_of_rows_without_one() -> None:
    text = (
        "site;time;mode;antal\n"
        "vd-1;2025-06-02 07:00;bil;12\n"
        "vd-2;2025-06-02 07:00;bil;1\n"
    )
    events, issues = converted("traffic-count", text, sites={"vd-1": "173"})
    assert [e["municipality_code"] for e in events] == ["173"]
    assert issues == [
        "row 3, column 'kommune': is empty, and site 'vd-2' is not in the --sites file"
    ]


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        (
            "co2-account",
            "Kommune;År;Sektor;Ton CO2e;Opgjort\nKøbnhavn;2022;Energi;1;2024-05-01\n",
            "row 2, column 'Kommune': 'Købnhavn' is not a municipality",
        ),
        (
            "co2-account",
            "Kommune;År;Sektor;Ton CO2e;Opgjort\n101;2022;Energi;-4;2024-05-01\n",
            "row 2, column 'Ton CO2e': -4.0 is less than the minimum of 0",
        ),
        (
            "co2-account",
            "Kommune;År;Sektor;Ton CO2e\n101;2022;Energi;4\n",
            "row 2, column 'opgjort': is empty, and no --vintage was given",
        ),
        (
            "co2-account",
            "Kommune;Sektor;Ton CO2e\n101;Energi;4\n",
            "row 1, column 'år': column is missing",
        ),
        (
            "traffic-count",
            "site,kommune,time,mode,count\ns,101,2025-06-02 07:00,fly,3\n",
            "row 2, column 'mode': 'fly' is not a known transport mode",
        ),
        (
            "traffic-count",
            "site,kommune,time,mode,count\ns,101,i morgen,bil,3\n",
            "row 2, column 'time': 'i morgen' is not a time",
        ),
        (
            "fleet-list",
            "vognnummer,operatør,garage,drivmiddel,dato\n"
            "1,Movia,Ballerup,el,2025-01-01\n1,Movia,Ballerup,el,2025-01-01\n",
            "row 3, column 'vognnummer': bus '1' is listed twice",
        ),
        (
            "fleet-list",
            "vognnummer,operatør,garage,drivmiddel,dato\n"
            "1,Movia,Ballerup,kul,2025-01-01\n",
            "row 2, column 'drivmiddel': 'kul' is not a known propulsion",
        ),
        (
            "vip-status",
            "project,tovholdere,status_okt_2024\nRing 9,Hoje Taastrup,Ja\n",
            "row 2, column 'tovholdere': 'Hoje Taastrup' is not a municipality",
        ),
        (
            "vip-status",
            "project,tovholdere,status_okt_2024\nRing 9,Ishøj,Måske\n",
            "row 2, column 'status_okt_2024': 'Måske' is not a known status",
        ),
    ],
)
def test_errors_name_the_row_and_the_column(
    kind: str, text: str, expected: str
) -> None:
    _events, issues = converted(kind, text)
    assert len(issues) == 1
    assert issues[0].startswith(expected), issues[0]


@pytest.mark.parametrize("kind", sorted(IMPORT_KINDS))
def test_each_documented_example_imports_cleanly(kind: str) -> None:
    assert (ROOT / "docs" / f"import-{kind}.md").exists()
    result = CliRunner().invoke(
        app, ["import", kind, str(EXAMPLES / f"{kind}.csv"), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "0 rows rejected" in result.output


def test_a_bad_row_makes_the_exit_code_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "Kommune;År;Sektor;Ton CO2e;Opgjort\n101;2022;Energi;x;2024-05-01\n"
        "101;2022;Transport;5;2024-05-01\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["import", "co2-account", str(bad), "--dry-run"])
    assert result.exit_code == 1
    assert "1 event valid" in result.output and "1 row rejected" in result.output


def test_danish_thousands_separators_without_decimals_are_read() -> None:
    text = "Kommune;År;Sektor;Ton CO2e\nKøbenhavn;2022;Energi;398.120\n"
    events, issues = converted("co2-account", text, vintage=date(2024, 5, 1))
    assert issues == []
    assert [e["tonnes_co2e"] for e in events] == [398120.0]


def test_a_decimal_comma_in_a_comma_separated_file_is_an_error_not_a_truncation() -> (
    None
):
    text = "Kommune,År,Sektor,Ton CO2e\nKøbenhavn,2022,Energi,412,5\n"
    events, issues = converted("co2-account", text, vintage=date(2024, 5, 1))
    assert events == []
    assert len(issues) == 1 and "column 5" in issues[0] and "row 2" in issues[0]


def test_an_infinite_number_is_refused_by_column() -> None:
    text = "Kommune;År;Sektor;Ton CO2e\nKøbenhavn;2022;Energi;inf\n"
    events, issues = converted("co2-account", text, vintage=date(2024, 5, 1))
    assert events == []
    assert len(issues) == 1 and "not a finite number" in issues[0]


def test_two_rows_for_one_fact_are_refused_naming_the_first() -> None:
    text = (
        "Kommune;År;Sektor;Ton CO2e\n"
        "København;2022;Energi;100\n"
        "København;2022;El og varme;50\n"
    )
    events, issues = converted("co2-account", text, vintage=date(2024, 5, 1))
    assert [e["tonnes_co2e"] for e in events] == [100.0]
    assert len(issues) == 1
    assert "row 3" in issues[0] and "repeats" in issues[0] and "row 2" in issues[0]
