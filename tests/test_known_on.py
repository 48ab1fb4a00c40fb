"""Progress as known on any date: the database and the offline fold agree.

The same events (accounts restated by later vintages, a target revised, a
fleet snapshot restated, counts corrected and reported late) go through the
services and through the fold; `progress --known-on DATE` must give the
same JSON on both for every date, and `--as-of` and `--known-on` combine.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.cli.progress import database_rows
from klimapuls.core.knowledge import KnownOnUnavailableError, known_by, known_on
from klimapuls.core.progress import Facts, evaluate_all
from klimapuls.core.reference import municipality_codes
from tests.fleet.factories import fleet_event
from tests.helpers import co2_event, target_event
from tests.mobility.factories import count_event
from tests.parity import Event, through_database, through_fold

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _accounts() -> list[Event]:
    events: list[Event] = []
    for i, code in enumerate(municipality_codes()):
        for year, tonnes in ((1990, 10_000.0), (2021, 6_000.0), (2022, 5_800.0)):
            vintage = "2023-05-01"
            events.append(
                ("co2_account", co2_event(code, year, "energy", tonnes + i, vintage))
            )
    # May 2024: 2021 recalculated for two municipalities, and 2023 arrives.
    for code in ("101", "147"):
        events.append(
            ("co2_account", co2_event(code, 2021, "energy", 7_400.0, "2024-05-01"))
        )
    events += [
        ("co2_account", co2_event(code, 2023, "energy", 5_500.0, "2024-05-01"))
        for code in municipality_codes()
    ]
    return events


def _counts() -> list[Event]:
    def count(mode: str, month: int, n: int, **fields: Any) -> Event:
        start = f"2024-{month:02d}-10T06:00:00+00:00"
        fields.setdefault("reported_at", "2025-01-05T00:00:00+00:00")
        return ("mobility_count", count_event("site-1", mode, start, n, **fields))

    events = [
        count(mode, month, n)
        for month in range(1, 12)
        for mode, n in (("car", 400), ("bike", 250), ("walk", 200), ("bus", 150))
    ]
    # December arrives late, March's bike count is corrected in June.
    events += [
        count(mode, 12, n, reported_at="2025-03-01T00:00:00+00:00")
        for mode, n in (("car", 380), ("bike", 200), ("walk", 190), ("bus", 160))
    ]
    events.append(
        count("bike", 3, 330, revision=1, reported_at="2025-06-01T00:00:00+00:00")
    )
    # Two reports of one key at one time: the event id decides, by code point.
    for event_id, n in (("test:tie:Z", 11), ("test:tie:a", 22)):
        events.append(
            count(
                "metro",
                5,
                n,
                event_id=event_id,
                reported_at="2025-01-05T00:00:00+00:00",
            )
        )
    return events


def _fleet() -> list[Event]:
    return [
        (
            "fleet_status",
            fleet_event("movia", "2023-12-31", garage="G", diesel=60, hvo=40),
        ),
        (
            "fleet_status",
            fleet_event("movia", "2024-12-31", garage="G", diesel=50, hvo=50),
        ),
        (
            "fleet_status",
            fleet_event(
                "movia",
                "2024-12-31",
                garage="G",
                diesel=30,
                battery_electric=70,
                reported_at="2025-04-01T00:00:00+00:00",
            ),
        ),
    ]


def _targets() -> list[Event]:
    return [
        ("target", target_event("kbh-2030", scope="101", reduction_pct=70)),
        (
            "target",
            target_event(
                "kbh-2030",
                2,
                scope="101",
                reduction_pct=80,
                reported_at="2025-02-01T00:00:00+00:00",
            ),
        ),
    ]


EVENTS = _accounts() + _counts() + _fleet() + _targets()
DATES = [
    date(2023, 12, 31),
    date(2024, 4, 30),
    date(2024, 5, 1),
    date(2025, 2, 1),
    date(2025, 4, 1),
    date(2025, 7, 1),
    NOW.date(),
]


def _offline(facts: Facts, known: date, as_of: date) -> list[dict[str, Any]]:
    return [p.as_json() for p in evaluate_all(known_on(facts, known), as_of)]


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["target_id"]: r for r in rows}


@pytest.fixture(scope="module")
def offline_facts() -> Facts:
    fold, _ = through_fold(EVENTS, NOW)
    return fold.facts()


def test_every_known_on_date_gives_the_same_progress_on_both_paths(
    engine: Engine, offline_facts: Facts
) -> None:
    through_database(engine, EVENTS, NOW)
    for known in DATES:
        for as_of in (known, NOW.date()):
            assert json.dumps(database_rows(engine, as_of, known)) == json.dumps(
                _offline(offline_facts, known, as_of)
            ), (known, as_of)


def test_what_was_known_is_what_was_reported_by_the_end_of_the_day(
    offline_facts: Facts,
) -> None:
    def on(known: date, as_of: date | None = None) -> dict[str, dict[str, Any]]:
        return _by_id(_offline(offline_facts, known, as_of or known))

    # Targets: the seed targets are known from their adoption, kbh-2030 from
    # the day it was reported, and its revision from the day of the revision.
    assert "kbh-2030" not in on(date(2023, 12, 31))
    assert on(date(2024, 5, 1))["kbh-2030"]["version"] == 1
    assert on(date(2025, 2, 1))["kbh-2030"]["version"] == 2
    # Accounts: the 2021 restatement (vintage 2024-05-01) is unknown the day
    # before and known on the day; --as-of alone would mix it in.
    before, after = on(date(2024, 4, 30)), on(date(2024, 5, 1))
    assert before["region-co2-2030"]["latest_year"] == 2022
    assert after["region-co2-2030"]["latest_year"] == 2023
    # --as-of alone (as of then, known now) mixes in what came later.
    mixed = on(NOW.date(), date(2024, 4, 30))["region-co2-2030"]
    assert mixed["latest_year"] == 2023
    # Counts: December was late, so 2024 was not counted on 1 February.
    assert on(date(2025, 2, 1))["sustainable-trips-2035"]["latest_year"] is None
    assert on(date(2025, 4, 1))["sustainable-trips-2035"]["latest_year"] == 2024
    march = on(date(2025, 4, 1))["bike-trips-2030"]["latest_value"]
    corrected = on(date(2025, 7, 1))["bike-trips-2030"]["latest_value"]
    assert corrected - march == 330 - 250
    # Fleet: the restated December snapshot counts from 1 April 2025.
    assert on(date(2025, 3, 1), NOW.date())["movia-fossil-free-2030"][
        "latest_value"
    ] == pytest.approx(50.0)
    assert on(date(2025, 4, 1), NOW.date())["movia-fossil-free-2030"][
        "latest_value"
    ] == pytest.approx(70.0)


def test_known_by_is_the_end_of_the_day_in_danish_time() -> None:
    assert known_by(date(2025, 6, 1)).isoformat() == "2025-06-02T00:00:00+02:00"


def test_facts_without_the_trips_of_a_date_say_so(engine: Engine) -> None:
    from klimapuls.cli.progress import database_facts

    facts = database_facts(engine)
    with pytest.raises(KnownOnUnavailableError, match="2025-01-01"):
        known_on(facts, date(2025, 1, 1))


def test_the_cli_combines_known_on_and_as_of_offline(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({**event, "schema": f"{kind}.v1"}) for kind, event in EVENTS
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    args = ["progress", "--offline", str(path), "--json", "--target", "kbh-2030"]
    early = runner.invoke(app, [*args, "--known-on", "2024-06-01"])
    late = runner.invoke(
        app, [*args, "--known-on", "2025-06-01", "--as-of", "2024-06-01"]
    )
    assert early.exit_code == late.exit_code == 0, early.output + late.output
    [first] = json.loads(early.stdout)
    [second] = json.loads(late.stdout)
    assert (first["version"], first["as_of"]) == (1, "2024-06-01")
    assert (second["version"], second["as_of"]) == (2, "2024-06-01")
    bad = runner.invoke(app, [*args, "--known-on", "June"])
    assert bad.exit_code == 2 and "--known-on" in bad.output


def test_seed_targets_are_known_from_their_adoption_not_from_the_seeding(
    engine: Engine, offline_facts: Facts
) -> None:
    for known in (date(2015, 12, 31), date(2020, 1, 1)):
        database = _by_id(database_rows(engine, known, known))
        offline = _by_id(_offline(offline_facts, known, known))
        assert database.keys() == offline.keys(), known
    assert "region-co2-2030" in offline  # known since 1990
    assert "movia-fossil-free-2030" in offline  # Movia's traffic plan, 2016
    early = _by_id(_offline(offline_facts, date(2015, 12, 31), date(2015, 12, 31)))
    assert "region-co2-2030" in early
    assert "movia-fossil-free-2030" not in early


def test_db_upgrade_corrects_the_known_from_date_of_stored_seeds(
    engine: Engine,
) -> None:
    from klimapuls.storage.seed import seed_reference_data
    from tests.helpers import rows

    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE target_version SET reported_at = '2024-01-01T00:00:00Z' "
            "WHERE producer = 'klimapuls-seed'"
        )
    assert seed_reference_data(engine) == 0  # no new version, only the dates
    stored = {
        r["target_id"]: r["reported_at"].astimezone(UTC).date()
        for r in rows(engine, "SELECT * FROM target_version")
    }
    assert stored["movia-fossil-free-2030"] == date(2016, 1, 1)
    assert stored["region-co2-2030"] == date(1990, 1, 1)
    known = date(2020, 1, 1)
    assert "region-co2-2030" in _by_id(database_rows(engine, known, known))


def test_known_on_the_last_date_there_is_is_everything_known(
    engine: Engine, offline_facts: Facts, tmp_path: Path
) -> None:
    through_database(engine, EVENTS, NOW)
    last = date(9999, 12, 31)
    everything = _offline(offline_facts, last, NOW.date())
    assert everything == _offline(offline_facts, NOW.date(), NOW.date())
    assert json.dumps(database_rows(engine, NOW.date(), last)) == json.dumps(everything)
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(json.dumps({**e, "schema": f"{k}.v1"}) for k, e in EVENTS),
        encoding="utf-8",
    )
    runner = CliRunner()
    LAST = ("--until", "9999-12-31")  # noqa: N806 - a constant of this test
    for args in (
        ["progress", "--offline", str(path), "--known-on", "9999-12-31"],
        ["changes", "--offline", str(path), "--since", "2024-04-30"],
        ["changes", "--offline", str(path), "--since", "2024-04-30", "--json"],
        ["changes", "--offline", str(path), "--since", "2024-04-30", *LAST],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output


def test_a_database_that_is_not_migrated_is_one_line(
    postgres: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import uuid

    import psycopg

    from klimapuls.cli import main

    name = f"empty_{uuid.uuid4().hex[:8]}"
    url = postgres.fresh_database(name)
    try:
        monkeypatch.setenv("DATABASE_URL", url)
        for args in (
            ["progress", "--known-on", "2024-01-01"],
            ["changes", "--since", "2024-01-01"],
        ):
            with pytest.raises(SystemExit) as exited:
                main(args)
            out, err = capsys.readouterr()
            assert exited.value.code == 1, (args, out + err)
            assert "Traceback" not in out + err
            assert err.strip().splitlines() == [
                "error: database is not migrated: run klimapuls db upgrade"
            ], args
    finally:
        admin = postgres.url("postgres").replace(
            "postgresql+psycopg://", "postgresql://"
        )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _status(initiative: str, round_: str) -> dict[str, Any]:
    return {
        "schema": "initiative_status.v1",
        "event_id": f"test:{initiative}:{round_}",
        "producer": "pytest",
        "reported_at": f"{round_}-20T09:00:00+00:00",
        "initiative_id": initiative,
        "initiative_name": initiative.replace("-", " ").title(),
        "programme": "test-programme",
        "round": round_,
        "status": "on_track",
        "tovholdere": ["Ballerup"],
    }


def test_the_initiatives_line_offline_counts_only_the_reports_known_then(
    tmp_path: Path,
) -> None:
    # Both initiatives reported in October 2023; a year later only test-a.
    path = tmp_path / "reports.jsonl"
    reports = [
        _status("test-a", "2023-10"),
        _status("test-b", "2023-10"),
        _status("test-a", "2024-10"),
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in reports), "utf-8")
    runner = CliRunner()
    args = ["progress", "--offline", str(path), "--json"]
    today = runner.invoke(app, args)
    then = runner.invoke(app, [*args, "--known-on", "2023-12-31"])
    assert today.exit_code == then.exit_code == 0, today.output + then.output
    assert "1 reports missing, 1 in round 2024-10" in today.stderr
    # On 31 December 2023 round 2024-10 had not been reported by anyone.
    assert "0 reports missing;" in then.stderr
    assert "2024-10" not in then.stderr


def test_initiatives_listed_after_the_known_on_date_are_not_counted_then(
    tmp_path: Path,
) -> None:
    # The VIP initiatives without a tovholder were listed from October 2022.
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps(_status("test-a", "2021-10")) + "\n", "utf-8")
    runner = CliRunner()
    args = ["progress", "--offline", str(path), "--json"]
    today = runner.invoke(app, args)
    then = runner.invoke(app, [*args, "--known-on", "2021-12-31"])
    assert today.exit_code == then.exit_code == 0, today.output + then.output
    assert "; 5 without a tovholder" in today.stderr
    assert "; 0 without a tovholder" in then.stderr
