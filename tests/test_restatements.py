"""The restatement audit: every restated figure and the targets it moved.

The same events go through the services (the targets service writes the
restatement log behind `board.restatements`) and through the fold; the
audit of `klimapuls changes` is the same on both.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.cli.changes import database_audit
from klimapuls.cli.progress import database_facts, database_rows
from klimapuls.core.progress import Facts, evaluate_all
from klimapuls.core.restatements import all_restatements, audit
from klimapuls.storage.db import in_transaction
from klimapuls.storage.facts import load_facts
from tests.helpers import co2_event, rows, target_event
from tests.parity import through_database, through_fold
from tests.test_known_on import EVENTS

NOW = datetime(2026, 11, 1, tzinfo=UTC)
SINCE = date(2024, 4, 30)


@pytest.fixture(scope="module")
def offline_facts() -> Facts:
    fold, _ = through_fold(EVENTS, NOW)
    return fold.facts()


def _find(result: dict[str, Any], **fields: Any) -> dict[str, Any]:
    [found] = [
        r for r in result["restatements"] if all(r[k] == v for k, v in fields.items())
    ]
    return found


def test_the_audit_lists_each_restated_figure_and_the_targets_it_moved(
    offline_facts: Facts,
) -> None:
    result = audit(offline_facts, SINCE, NOW.date()).as_json()
    kbh = _find(result, family="co2_account", scope="101", year=2021)
    assert (kbh["old_value"], kbh["new_value"]) == (6_000.0, 7_400.0)
    assert (kbh["old_vintage"], kbh["new_vintage"]) == ("2023-05-01", "2024-05-01")
    assert kbh["producer"] == "pytest"
    assert kbh["change_pct"] == pytest.approx(100 * 1_400 / 6_000)
    fleet = _find(result, family="fleet_status", sector="fossil_free_bus_share")
    assert (fleet["period"], fleet["old_value"], fleet["new_value"]) == (
        "2024-12-31",
        50.0,
        70.0,
    )
    counts = _find(result, family="mobility_count", sector="bike")
    assert (counts["old_value"], counts["new_value"]) == (250.0, 330.0)
    # The new 2023 figures are new, not restated.
    assert not [r for r in result["restatements"] if r["year"] == 2023]
    moved = {t["target_id"]: t for t in result["targets"]}
    assert "kbh-2030" in moved
    assert moved["kbh-2030"]["summary"].startswith("2021 restated by +23.3 %: ")
    assert "forecast" in moved["kbh-2030"]["summary"]
    # A target whose series nothing restated is not listed, even if it moved.
    assert "drinking-water-2030" not in moved


def test_the_database_and_the_files_give_the_same_audit(
    engine: Engine, database_url: str, offline_facts: Facts
) -> None:
    through_database(engine, EVENTS, NOW)
    for since, until in ((SINCE, NOW.date()), (date(2025, 3, 1), date(2025, 7, 1))):
        for scope in (None, "101", "movia"):
            assert database_audit(database_url, since, until, scope).as_json() == (
                audit(offline_facts, since, until, scope).as_json()
            ), (since, until, scope)


def test_the_board_view_lists_every_restatement_the_core_finds(
    engine: Engine, offline_facts: Facts
) -> None:
    through_database(engine, EVENTS, NOW)
    board = rows(
        engine,
        "SELECT restated_at, scope, municipality_code, year, sector, old_value, "
        "new_value, change_pct, old_vintage, new_vintage, producer "
        "FROM board.restatements ORDER BY restated_at, scope, year, sector",
    )
    core = sorted(
        all_restatements(offline_facts),
        key=lambda r: (r.restated_at, r.scope, r.year, r.sector),
    )
    assert [
        (r["restated_at"], r["scope"], r["year"], r["sector"], r["new_value"])
        for r in board
    ] == [(r.restated_at, r.scope, r.year, r.sector, r.new_value) for r in core]
    assert len(board) == 2 + 2 + 1  # two CO2 figures, two shares, one count


def test_a_figure_restated_back_and_forth_lists_each_step(engine: Engine) -> None:
    a = co2_event("101", 2022, "energy", 100.0, "2023-05-01")
    b = {
        **a,
        "event_id": "b",
        "tonnes_co2e": 120.0,
        "reported_at": "2023-06-01T09:00:00Z",
    }
    again = {**a, "reported_at": "2023-07-01T09:00:00Z"}
    events = [("co2_account", a), ("co2_account", b), ("co2_account", again)]
    fold, offline = through_fold(events, NOW)
    assert through_database(engine, events, NOW) == offline
    steps = [(r.old_value, r.new_value) for r in all_restatements(fold.facts())]
    assert steps == [(100.0, 120.0), (120.0, 100.0)]
    assert [
        (r["old_value"], r["new_value"])
        for r in rows(engine, "SELECT * FROM board.restatements ORDER BY restated_at")
    ] == steps


def test_changes_offline_prints_json_and_a_table_and_refuses_bad_dates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(json.dumps({**e, "schema": f"{k}.v1"}) for k, e in EVENTS),
        encoding="utf-8",
    )
    runner = CliRunner()
    base = ["changes", "--offline", str(path), "--since", "2024-04-30"]
    result = runner.invoke(app, [*base, "--json", "--until", "2026-11-01"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["restatements"]) == 5
    table = runner.invoke(app, [*base, "--until", "2026-11-01", "--scope", "101"])
    assert table.exit_code == 0, table.output
    assert "kbh-2030" in table.stdout and "Traceback" not in table.output
    bad = runner.invoke(app, ["changes", "--offline", str(path), "--since", "x"])
    assert bad.exit_code == 2 and "--since" in bad.output
    scope = runner.invoke(app, [*base, "--scope", "999"])
    assert scope.exit_code == 2 and "unknown scope" in scope.output
    # A --since after today, without --until, names --since (the one given).
    later = runner.invoke(
        app, ["changes", "--offline", str(path), "--since", "9999-12-31"]
    )
    assert later.exit_code == 2 and "after today" in later.output
    assert "must not be before" not in later.output


def test_the_migration_creates_the_restatement_table_of_the_model(
    engine: Engine,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from klimapuls.storage.models_restatements import RestatementRow

    mine = MetaData()
    RestatementRow.__table__.to_metadata(mine)
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


def test_a_subsector_first_reported_completes_a_figure_and_restates_nothing() -> None:
    el = co2_event("101", 2022, "energy", 60.0, "2023-05-01", subsector="el")
    heat = co2_event(
        "101",
        2022,
        "energy",
        40.0,
        "2023-05-01",
        subsector="varme",
        reported_at="2023-06-01T09:00:00+00:00",
    )
    fixed = {**heat, "event_id": "fixed", "tonnes_co2e": 44.0}
    fixed["reported_at"] = "2023-07-01T09:00:00+00:00"
    fold, _ = through_fold(
        [("co2_account", el), ("co2_account", heat), ("co2_account", fixed)], NOW
    )
    [only] = all_restatements(fold.facts())
    assert (only.old_value, only.new_value) == (100.0, 104.0)


def test_the_operations_board_and_the_report_show_the_restatements(
    engine: Engine, offline_facts: Facts
) -> None:
    from sqlalchemy import text

    from klimapuls.boards import all_boards
    from klimapuls.boards.macros import TimeRange, expand
    from klimapuls.report import ReportInput, render_report

    through_database(engine, EVENTS, NOW)
    board = next(b for b in all_boards() if b.uid == "klimapuls-operations")
    [query] = [q for q in board.queries if q.panel_title == "Rettelser"]
    assert "FROM board.restatements" in query.raw_sql
    with engine.connect() as conn:
        shown = conn.execute(
            text(expand(query.raw_sql, TimeRange.of(board.json, NOW), {}))
        ).all()
    core = all_restatements(offline_facts)
    assert sorted((r[0], r[2], r[7]) for r in shown) == sorted(
        (r.restated_at, r.scope, r.new_value) for r in core
    )
    page = render_report(ReportInput(offline_facts, NOW.date(), "x"))
    section = page.split("<h2>Rettelser</h2>", 1)[1]
    assert section.count("<tr>") == 1 + len(core)  # the head, then each one
    assert "7.400 t" in section and "+23,3 %" in section  # 6.000 t -> 7.400 t
    kbh = render_report(ReportInput(offline_facts, NOW.date(), "x", "101"))
    assert kbh.split("<h2>Rettelser</h2>", 1)[1].count("<tr>") == 1 + 1


def test_a_target_revised_in_between_is_not_blamed_on_a_restatement(
    engine: Engine,
) -> None:
    events: list[tuple[str, dict[str, Any]]] = [
        ("co2_account", co2_event("101", year, "energy", tonnes, "2022-05-01"))
        for year, tonnes in ((1990, 10_000.0), (2020, 6_000.0), (2021, 5_800.0))
    ]
    events += [
        ("target", target_event("kbh-2030", scope="101", reduction_pct=40)),
        # Revised to a much harder target before the restatement arrives.
        (
            "target",
            target_event(
                "kbh-2030",
                2,
                scope="101",
                reduction_pct=90,
                reported_at="2024-03-01T00:00:00+00:00",
            ),
        ),
        # 2021 restated by a hair: the forecast moves, the status does not.
        ("co2_account", co2_event("101", 2021, "energy", 5_810.0, "2024-05-01")),
    ]
    fold, _ = through_fold(events, NOW)
    since, until = date(2024, 1, 1), date(2024, 12, 31)
    offline = audit(fold.facts(), since, until, "101")
    through_database(engine, events, NOW)
    stored = database_audit(
        engine.url.render_as_string(hide_password=False), since, until, "101"
    )
    assert stored.as_json() == offline.as_json()
    [change] = offline.targets
    assert change.before.version == change.after.version == 2
    assert change.before.status == change.after.status
    assert change.summary().startswith("2021 restated by +0.2 %: forecast ")
    assert "status" not in change.summary()


def test_restated_at_is_shown_and_stored_in_utc(engine: Engine, tmp_path: Path) -> None:
    first = co2_event("101", 2022, "energy", 100.0, "2023-05-01")
    # Reported in Danish summer time, and a vintage (Danish midnight) later
    # than the report of the next one: neither offset may show through.
    later = co2_event(
        "101",
        2022,
        "energy",
        120.0,
        "2024-05-01",
        reported_at="2024-05-01T09:00:00+02:00",
    )
    early = co2_event(
        "147", 2022, "energy", 50.0, "2024-05-01", reported_at="2024-04-30T21:00:00Z"
    )
    events = [
        ("co2_account", first),
        ("co2_account", later),
        ("co2_account", co2_event("147", 2022, "energy", 40.0, "2023-05-01")),
        ("co2_account", early),
    ]
    fold, _ = through_fold(events, NOW)
    result = audit(fold.facts(), date(2024, 1, 1), NOW.date()).as_json()
    assert sorted(r["restated_at"] for r in result["restatements"]) == [
        "2024-04-30T22:00:00+00:00",  # the vintage began at Danish midnight
        "2024-05-01T07:00:00+00:00",
    ]
    through_database(engine, events, NOW)
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'Europe/Copenhagen'")
        stored = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT restated_at AT TIME ZONE 'UTC' FROM board.restatements "
                "ORDER BY 1"
            )
        ]
    assert [s.isoformat() for s in stored] == [
        "2024-04-30T22:00:00",
        "2024-05-01T07:00:00",
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for _, e in events), encoding="utf-8")
    table = CliRunner().invoke(
        app, ["changes", "--offline", str(path), "--since", "2024-01-01"]
    )
    assert table.exit_code == 0, table.output
    assert "2024-04-30 22:00Z" in table.stdout
    assert "2024-05-01 07:00Z" in table.stdout


def test_progress_reads_the_facts_without_the_audits_restated_counts(
    engine: Engine,
) -> None:
    through_database(engine, EVENTS, NOW)
    full = in_transaction(engine, load_facts)
    assert full.restated_counts  # the events restate a count
    read = database_facts(engine)
    assert read.restated_counts == ()
    assert replace(read, restated_counts=full.restated_counts) == full
    assert json.dumps(database_rows(engine, NOW.date())) == json.dumps(
        [p.as_json() for p in evaluate_all(full, NOW.date())]
    )
