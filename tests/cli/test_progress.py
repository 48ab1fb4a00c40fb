"""`klimapuls progress`: offline files and the database give the same numbers."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from klimapuls.cli import app, main
from klimapuls.cli.progress import collector_paused
from klimapuls.core.reference import municipality_codes
from klimapuls.storage import accounts, fleet, targets
from tests.helpers import co2_event, target_event

# Every municipality: 1000 t in 1990, then 500 ... 300 in 2019-2023 (as in
# tests/co2/test_pipeline.py), and a DK2020 target of København.
PER_MUNICIPALITY = {
    1990: 1000.0,
    2019: 500.0,
    2020: 450.0,
    2021: 400.0,
    2022: 350.0,
    2023: 300.0,
}
KBH_2030 = target_event("kbh-dk2020-2030", scope="101", reduction_pct=70)


def _events() -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = [
        ("co2_account", co2_event(code, year, "energy", tonnes))
        for code in municipality_codes()
        for year, tonnes in PER_MUNICIPALITY.items()
    ]
    # København restates 2023 upwards; the newest vintage counts.
    events.append(
        ("co2_account", co2_event("101", 2023, "energy", 320.0, "2025-05-01"))
    )
    events.append(("target", KBH_2030))
    return events


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["progress", *args])


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "events.jsonl", [json.dumps(e) for _, e in _events()])


def test_offline_json_has_the_hand_computed_numbers(events_file: Path) -> None:
    result = _run("--offline", str(events_file), "--json", "--as-of", "2024-06-01")
    assert result.exit_code == 0, result.output
    by_id = {r["target_id"]: r for r in json.loads(result.stdout)}
    region = by_id["region-co2-2030"]
    # E_b = 29,000 t; E(2023) = 28 * 300 + 320 = 8,720 t; P(2023) = 8,663.75 t.
    assert region["baseline_value"] == pytest.approx(29_000)
    assert region["latest_value"] == pytest.approx(8_720)
    assert region["path_value"] == pytest.approx(8_663.75)
    assert region["gap_to_path"] == pytest.approx(56.25)
    assert region["status"] == "at_risk"
    assert region["stale"] is False
    assert region["coverage"] == {"year": 2023, "reported": 29, "expected": 29}
    kbh = by_id["kbh-dk2020-2030"]
    assert (kbh["scope"], kbh["latest_value"], kbh["status"]) == (
        "101",
        320.0,
        "on_track",
    )
    # Every seed target is there, measured or not.
    assert by_id["movia-fossil-free-2030"]["status"] == "no_data"
    assert by_id["region-zero-emission-buses"]["target_year"] is None


def test_offline_filters_by_target_and_scope(events_file: Path) -> None:
    one = _run("--offline", str(events_file), "--json", "--target", "kbh-dk2020-2030")
    assert [r["target_id"] for r in json.loads(one.stdout)] == ["kbh-dk2020-2030"]
    scoped = _run("--offline", str(events_file), "--json", "--scope", "DK")
    assert [r["target_id"] for r in json.loads(scoped.stdout)] == [
        "dk-climate-law-2030"
    ]


def test_offline_table_shows_coloured_statuses(events_file: Path) -> None:
    result = _run("--offline", str(events_file), "--as-of", "2024-06-01")
    assert result.exit_code == 0
    assert "Target progress as of 2024-06-01" in result.stdout
    assert "at_risk" in result.stdout


def test_invalid_lines_are_reported_with_line_field_and_reason_and_skipped(
    tmp_path: Path, events_file: Path
) -> None:
    good = co2_event(
        "147", 2025, "energy", 1.0
    )  # a 2030 figure is refused now (future)
    bad = _write(
        tmp_path / "bad.jsonl",
        [
            json.dumps(good),
            '{"schema": "co2_account.v1", "event_id": "broken"',
            json.dumps({**good, "event_id": "neg", "tonnes_co2e": -1}),
            "",
            json.dumps({k: v for k, v in good.items() if k != "schema"}),
        ],
    )
    result = _run("--offline", str(events_file), str(bad), "--json")
    assert result.exit_code == 1
    assert f"{bad}:2: $: not valid JSON" in result.stderr
    assert f"{bad}:3: tonnes_co2e: " in result.stderr
    assert f"{bad}:5: schema: is required" in result.stderr
    assert "3 invalid lines skipped" in result.stderr
    # The valid lines are still evaluated and printed.
    assert any(r["target_id"] == "region-co2-2030" for r in json.loads(result.stdout))


def test_usage_errors_exit_2(events_file: Path) -> None:
    assert _run("--offline", str(events_file), "--as-of", "soon").exit_code == 2
    assert _run("--offline", str(events_file), "--target", "nope").exit_code == 2
    assert _run("--offline", str(events_file), "--scope", "999").exit_code == 2
    assert _run("--offline").exit_code == 2
    assert _run("--offline", "missing.jsonl").exit_code == 2


def test_database_mode_needs_a_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["progress", "--json"])
    assert exited.value.code == 1
    assert "DATABASE_URL" in capsys.readouterr().err


def _store(engine: Engine) -> None:
    events = _events()
    accounts_ = [e for kind, e in events if kind == "co2_account"]
    targets_ = [e for kind, e in events if kind == "target"]
    with engine.begin() as conn:
        accounts.store_co2_accounts(conn, accounts_)
        targets.store_targets(conn, targets_)


def test_the_database_and_the_files_give_the_same_numbers(
    engine: Engine,
    database_url: str,
    events_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _store(engine)
    monkeypatch.setenv("DATABASE_URL", database_url)
    from_db = _run("--json", "--as-of", "2024-06-01")
    assert from_db.exit_code == 0, from_db.output
    offline = _run("--offline", str(events_file), "--json", "--as-of", "2024-06-01")
    assert json.loads(from_db.stdout) == json.loads(offline.stdout)


def test_as_of_recomputes_at_that_date(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(engine)
    monkeypatch.setenv("DATABASE_URL", database_url)
    early = _run("--json", "--as-of", "2021-06-01", "--target", "region-co2-2030")
    late = _run("--json", "--as-of", "2026-06-01", "--target", "region-co2-2030")
    (then,) = json.loads(early.stdout)
    (now,) = json.loads(late.stdout)
    assert (then["latest_year"], then["latest_value"]) == (2021, pytest.approx(11_600))
    assert then["stale"] is False
    assert (now["latest_year"], now["stale"]) == (2023, True)


def test_fleet_targets_are_recomputed_from_the_stored_snapshots(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fleet.factories import fleet_event

    with engine.begin() as conn:
        fleet.store_fleet_status(
            conn,
            [
                fleet_event("movia", f"{year}-12-31", garage="G", diesel=100 - v, hvo=v)
                for year, v in {2022: 39, 2023: 45, 2024: 53}.items()
            ],
        )
    monkeypatch.setenv("DATABASE_URL", database_url)
    now = _run("--json", "--target", "movia-fossil-free-2030", "--as-of", "2025-06-01")
    (row,) = json.loads(now.stdout)
    assert (row["latest_year"], row["latest_value"]) == (2024, 53.0)
    then = _run("--json", "--target", "movia-fossil-free-2030", "--as-of", "2023-06-01")
    assert json.loads(then.stdout)[0]["latest_year"] == 2022


def test_the_collector_is_paused_only_while_progress_is_computed() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()
