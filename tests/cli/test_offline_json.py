"""`--offline` reads a `.json` file as one JSON document (an event or a list
of events), as `klimapuls produce` does, and JSONL files line by line: the
same events give the same answers either way."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from klimapuls.cli import app
from tests.test_known_on import EVENTS

COMMANDS = (
    ["progress", "--json", "--as-of", "2026-11-01"],
    ["changes", "--json", "--since", "2024-04-30", "--until", "2026-11-01"],
    ["alerts", "--json", "--as-of", "2026-11-01"],
)


def _events() -> list[dict[str, object]]:
    return [{**event, "schema": f"{kind}.v1"} for kind, event in EVENTS]


def _run(args: list[str], path: Path) -> str:
    if args[0] == "alerts":
        args = ["alerts", "--offline", str(path), *args[1:]]
    else:
        args = [*args, "--offline", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_json_list_gives_what_the_same_events_as_jsonl_give(tmp_path: Path) -> None:
    lines = tmp_path / "events.jsonl"
    lines.write_text("\n".join(json.dumps(e) for e in _events()), encoding="utf-8")
    document = tmp_path / "events.json"
    document.write_text(json.dumps(_events(), indent=2), encoding="utf-8")
    for args in COMMANDS:
        assert json.loads(_run(args, document)) == json.loads(_run(args, lines)), args


def test_a_json_file_may_hold_one_event(tmp_path: Path) -> None:
    kind, event = next(pair for pair in EVENTS if pair[0] == "target")
    path = tmp_path / "target.json"
    path.write_text(json.dumps({**event, "schema": f"{kind}.v1"}, indent=2))
    rows = json.loads(
        _run(["progress", "--json", "--target", event["target_id"]], path)
    )
    assert [r["target_id"] for r in rows] == [event["target_id"]]


def test_a_broken_json_document_is_one_line_naming_where(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"schema": "target.v1",\n  oops\n]', encoding="utf-8")
    result = CliRunner().invoke(app, ["progress", "--offline", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: $: not valid JSON" in result.output
    assert "Traceback" not in result.output
