"""The CLI as a new user meets it: one test (or more) per item of issue 10.

End-to-end behaviour of `up` (signals, leftovers, addresses) is in
`tests/stack/test_up_lifecycle.py`; the bad-input battery in
`test_bad_input.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from klimapuls.cli import main
from klimapuls.storage import accounts
from tests.helpers import co2_event, target_event


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# 1. completion checks scale past PostgreSQL's 65,535 bind parameters
def test_completion_counts_a_quarter_million_ids_and_only_what_is_missing(
    engine: Engine,
) -> None:
    from klimapuls.cli.up import Completion

    stored = [co2_event("101", 2000 + i, "energy", 1.0) for i in range(20)]
    with engine.begin() as conn:
        accounts.store_co2_accounts(conn, stored)
    expected = {
        "co2_account": [e["event_id"] for e in stored]
        + [f"not-yet-{i}" for i in range(250_000)],
        "dead_letter": [f"dl-{i}" for i in range(100)],
    }
    completion = Completion(engine, expected)
    try:
        started = time.monotonic()
        assert completion.poll() == 20
        first = time.monotonic() - started
        assert completion.poll() == 20  # found ids are not counted again
        print(f"first poll over 250,120 ids {first * 1000:.0f} ms")
    finally:
        completion.close()


# 4. non-UTF-8 input is named by file, line and byte; Latin-1 CSV accepted
def test_non_utf8_jsonl_names_the_file_line_and_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(co2_event("101", 2022, "energy", 1.0))
    path = _write(tmp_path / "e.jsonl", good + '\n{"source": "København"}\n', "latin-1")
    code, _, err = _run(["produce", "co2_account", str(path), "--dry-run"], capsys)
    assert code == 1
    assert f"{path}:2: $: byte 0xF8 at column 14 is not UTF-8" in err
    code, _, err = _run(["progress", "--offline", str(path), "--json"], capsys)
    assert code == 1
    assert f"{path}:2: $: byte 0xF8" in err


def test_a_latin1_csv_export_is_imported_with_its_danish_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path / "export.csv",
        "Kommune;År;Sektor;Ton CO2e;Opgjort\nKøbenhavn;2022;Energi;1,5;2024-05-01\n",
        "cp1252",
    )
    code, out, err = _run(["import", "co2-account", str(path), "--dry-run"], capsys)
    assert code == 0, err
    assert "1 event valid" in out
    assert "read as Windows-1252/Latin-1" in err


# 5. a CSV row with more cells than the header is a line error, not a crash
def test_produce_reports_a_cell_beyond_the_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path / "a.csv",
        "municipality_code,year,sector,tonnes_co2e,vintage,source\n"
        "101,2022,energy,1,2023-05-01,x,surplus\n",
    )
    code, _, err = _run(["produce", "co2_account", str(path), "--dry-run"], capsys)
    assert code == 1
    assert f"{path}:2: column 7: a cell beyond the last header column" in err


# 6. unreachable brokers fail fast, in one line
def test_unreachable_broker_fails_within_seconds(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    path = _write(tmp_path / "e.jsonl", json.dumps(co2_event("101", 2022, "energy", 1)))
    for args in (
        ["produce", "co2_account", str(path)],
        ["topics", "create"],
        ["simulate", "--duration", "1"],
    ):
        started = time.monotonic()
        code, _, err = _run(args, capsys)
        assert time.monotonic() - started < 10
        assert code == 1
        assert err.count("\n") == 1 and "cannot reach the Kafka broker" in err


# 7. a .txt file and a malformed DATABASE_URL are errors, not tracebacks
def test_wrong_file_type_and_bad_database_url_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(tmp_path / "events.txt", "{}\n")
    code, _, err = _run(["produce", "target", str(path)], capsys)
    # The usage box wraps long paths: compare the words, not the layout.
    words = " ".join(err.replace("│", " ").split())
    assert code == 2 and "unknown file type '.txt'" in words
    monkeypatch.setenv("DATABASE_URL", "not-a-url")
    code, _, err = _run(["progress"], capsys)
    assert code == 1 and "DATABASE_URL 'not-a-url' is not a database URL" in err


# 8. options are validated
@pytest.mark.parametrize(
    "args",
    [
        ["up", "--timeout", "-1"],
        ["up", "--timeout", "0"],
        ["up", "--demo-days", "0"],
        ["up", "--demo-days", "-2"],
        ["up", "--demo-days", "100000"],
    ],
)
def test_up_refuses_nonsense_options(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2 and args[1] in err


# 9. user data is printed as written: line 100 is not an emoji
def test_line_100_is_named_not_turned_into_an_emoji(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(co2_event("101", 2022, "energy", 1.0))
    lines = [good] * 99 + ['{"broken": ']
    path = _write(tmp_path / "events[red].jsonl", "\n".join(lines) + "\n")
    code, _, err = _run(["produce", "co2_account", str(path), "--dry-run"], capsys)
    assert code == 1
    assert f"{path}:100: $: not valid JSON" in err
    code, _, err = _run(["progress", "--offline", str(path), "--json"], capsys)
    assert f"{path}:100: $: not valid JSON" in err


# 10. at 80 columns or piped, ids and statuses are never cut
def _progress_piped(path: Path, columns: str | None) -> str:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    if columns:
        env["COLUMNS"] = columns
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "klimapuls",
            "progress",
            "--offline",
            str(path),
            "--as-of",
            "2024-06-01",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("columns", ["80", "60", None])
def test_progress_never_cuts_ids_or_statuses(
    tmp_path: Path, columns: str | None
) -> None:
    path = _write(
        tmp_path / "e.jsonl",
        "\n".join(
            json.dumps(co2_event(c, y, "energy", 100.0))
            for c in ("101",)
            for y in (1990, 2022)
        )
        + "\n",
    )
    out = _progress_piped(path, columns)
    for target in (
        "region-co2-2030",
        "region-neutral-2045",
        "region-zero-emission-buses",
        "movia-fossil-free-2030",
        "sustainable-trips-2035",
    ):
        assert target in out
    assert "no_data" in out and "…" not in out
    width = int(columns) if columns else 160
    assert max(len(line) for line in out.splitlines()) <= width


# 12. both spellings of kinds; .json documents; ';' CSV in produce
def test_kinds_in_either_spelling_json_documents_and_semicolon_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [
        co2_event("101", 2022, "energy", 1.0),
        co2_event("147", 2022, "energy", 2.0),
    ]
    one = _write(tmp_path / "one.json", json.dumps(events[0], indent=2))
    many = _write(tmp_path / "many.json", json.dumps(events, indent=2))
    semi = _write(
        tmp_path / "semi.csv",
        "municipality_code;year;sector;tonnes_co2e;vintage;source\n"
        "101;2022;energy;1,5;2023-05-01;x\n",
    )
    for kind, path, valid in (
        ("co2-account", one, 1),
        ("co2_account", many, 2),
        ("CO2-Account", semi, 1),
    ):
        code, out, err = _run(["produce", kind, str(path), "--dry-run"], capsys)
        assert code == 0, err
        assert f"co2_account: {valid} valid" in out
    csv = _write(
        tmp_path / "x.csv",
        "Kommune;År;Sektor;Ton CO2e;Opgjort\n101;2022;Energi;1;2024-05-01\n",
    )
    code, _, err = _run(["import", "co2_account", str(csv), "--dry-run"], capsys)
    assert code == 0, err


# 13. error texts read as sentences, once, and empty input says so
def test_error_texts_are_plain_and_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = co2_event("101", 2022, "energy", 1.0)
    bad = _write(tmp_path / "b.jsonl", json.dumps({**good, "tonnes_co2e": True}) + "\n")
    code, _, err = _run(["produce", "co2_account", str(bad), "--dry-run"], capsys)
    assert f"{bad}:1: tonnes_co2e: true is not a number" in err
    assert "True" not in err and err.count("tonnes_co2e") == 1
    goal_less = {
        k: v
        for k, v in target_event("bike-goal", indicator="bike_trips").items()
        if k not in ("reduction_pct", "increase_pct", "target_value")
    }
    path = _write(tmp_path / "t.jsonl", json.dumps(goal_less) + "\n")
    code, _, err = _run(["produce", "target", str(path), "--dry-run"], capsys)
    assert "give at least one of target_value, reduction_pct, increase_pct" in err
    assert "{" not in err  # no event dumped
    two = _write(
        tmp_path / "two.csv",
        "municipality_code,year,sector,tonnes_co2e,vintage,source\n"
        "101,later,energy,lots,2023-05-01,x\n",
    )
    code, _, err = _run(["produce", "co2_account", str(two), "--dry-run"], capsys)
    assert "year: 'later' is not a whole number" in err
    assert "tonnes_co2e: 'lots' is not a number" in err
    extra = _write(
        tmp_path / "e.csv",
        "Kommune;År;Sektor;Ton CO2e;Opgjort\n101;2022;Energi;1;2024-05-01;x\n",
    )
    code, _, err = _run(["import", "co2-account", str(extra), "--dry-run"], capsys)
    assert "row 2, column 6:" in err and "column column" not in err
    assert not err.startswith("\n")
    empty = _write(tmp_path / "empty.jsonl", "\n")
    code, _, err = _run(["produce", "co2_account", str(empty), "--dry-run"], capsys)
    assert code == 1 and f"no events in {empty}" in err
    empty_csv = _write(tmp_path / "empty.csv", "")
    code, _, err = _run(["import", "co2-account", str(empty_csv), "--dry-run"], capsys)
    assert code == 1 and f"no events in {empty_csv}" in err
    one = _write(tmp_path / "one.jsonl", json.dumps(good) + "\n")
    code, _, err = _run(["progress", "--offline", str(one), "--json"], capsys)
    assert "1 event read, 0 invalid lines skipped" in err


# 14. help reads well
def test_help_shows_no_types_on_flags_names_arguments_and_has_a_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(["up", "--help"], capsys)
    assert code == 0
    assert "<bool>" not in out and "stack ." not in out
    assert "[default: .klimapuls]" in out
    _, out, _ = _run(["produce", "--help"], capsys)
    assert "KIND FILE" in out and "{kind}" not in out
    _, out, _ = _run(["simulate", "--help"], capsys)
    assert "00:00:00" not in out and "DATE" in out
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and out.startswith("klimapuls ")


# 15. progress reads right for rising targets too
def test_progress_json_has_fields_that_read_right_both_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fleet.factories import fleet_event

    snapshots = [
        fleet_event("movia", f"{year}-12-31", garage="G", diesel=100 - v, hvo=v)
        for year, v in {2021: 23, 2022: 39, 2023: 45, 2024: 53}.items()
    ]
    path = _write(
        tmp_path / "f.jsonl", "\n".join(json.dumps(e) for e in snapshots) + "\n"
    )
    _code, out, _ = _run(
        [
            "progress",
            "--offline",
            str(path),
            "--json",
            "--target",
            "movia-fossil-free-2030",
            "--as-of",
            "2025-06-01",
        ],
        capsys,
    )
    (row,) = json.loads(out)
    assert row["reduction_achieved_pct"] < 0  # kept, as other tools read it
    assert row["required_annual_reduction"] < 0
    share = 100 * (53 - row["baseline_value"]) / (100 - row["baseline_value"])
    assert row["goal_achieved_pct"] == pytest.approx(share)
    assert row["required_annual_change"] == pytest.approx((100 - 53) / (2030 - 2024))
    _, out, _ = _run(
        [
            "progress",
            "--offline",
            str(path),
            "--target",
            "movia-fossil-free-2030",
            "--as-of",
            "2025-06-01",
        ],
        capsys,
    )
    assert "+7.8 pt/yr" in out and f"{share:.0f} %" in out
