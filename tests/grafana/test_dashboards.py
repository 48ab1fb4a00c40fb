"""Boards and alert rules under `grafana/`: generated from `klimapuls.boards`,
accepted by Grafana's own schema, true to the static rules, and every panel
and alert query answers in the expected shape on a database holding the demo
mix (Grafana's macros and template variables expanded)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from klimapuls.alerts.handlers import AlertSender, evaluate
from klimapuls.boards import all_boards, generated_files
from klimapuls.boards.alert_rules import provisioning_file
from klimapuls.boards.follow_up import RULE_LABELS
from klimapuls.boards.macros import TimeRange, expand, interval_for
from klimapuls.boards.panels import Board
from klimapuls.boards.validate import (
    ensure_schema_tools,
    run_queries,
    schema_problems,
    static_problems,
)
from klimapuls.cli import app
from klimapuls.cli.alerts_demo import seed_demo_contacts
from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.alert_text import OutgoingMessage
from klimapuls.core.alerting import AlertRules
from klimapuls.core.batch import Incoming
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.simulator import demo_events
from klimapuls.storage.deadletters import store_dead_letters
from klimapuls.storage.outbox import unpublished_status_changes
from klimapuls.streaming import BatchHandler
from klimapuls.targets.handlers import TargetsHandler

GRAFANA = Path(__file__).parent.parent.parent / "grafana"
BOARDS = all_boards()
BOARD_UIDS = [b.uid for b in BOARDS]


@pytest.fixture(scope="session")
def schema_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with TypeScript and Grafana's schema packages from npm."""
    import shutil

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: cannot fetch Grafana's schema")
    return ensure_schema_tools(tmp_path_factory.mktemp("grafana-schema"))


def test_there_is_a_board_for_every_question_coordinators_ask() -> None:
    assert BOARD_UIDS == [
        "klimapuls-co2",
        "klimapuls-kommune",
        "klimapuls-fleet",
        "klimapuls-mobility",
        "klimapuls-initiatives",
        "klimapuls-operations",
    ]


def test_the_files_under_grafana_are_what_the_code_generates() -> None:
    for name, content in generated_files().items():
        assert (GRAFANA / name).read_text(encoding="utf-8") == content, name
    on_disk = {f"dashboards/{p.name}" for p in (GRAFANA / "dashboards").glob("*")}
    assert on_disk == {n for n in generated_files() if n.startswith("dashboards/")}


def test_every_board_and_rule_keeps_the_static_rules() -> None:
    assert static_problems(BOARDS, GRAFANA) == []


def _broken(board: Board) -> Board:
    """A copy with a doubled panel id, a stray variable, another datasource,
    a chart without unit, and a panel on a base table."""
    data = copy.deepcopy(board.json)
    panels = data["panels"]
    panels[1]["id"] = panels[0]["id"]
    chart = next(p for p in panels if p["type"] == "timeseries")
    del chart["fieldConfig"]["defaults"]["unit"]
    chart["targets"][0]["rawSql"] += " AND x = '$region'"
    panels[-1]["targets"][0]["datasource"]["uid"] = "other"
    panels[-1]["targets"][0]["rawSql"] = "SELECT * FROM co2_account"
    return Board(board.uid, board.title, data, board.queries, board.variables)


def test_the_static_rules_catch_each_kind_of_mistake() -> None:
    problems = "\n".join(static_problems([_broken(BOARDS[0])], None))
    assert "is used twice" in problems
    assert "without a unit" in problems
    assert "$region is not declared" in problems
    assert "'other' is not 'klimapuls-pg'" in problems
    assert "reads co2_account, not a board.* view" in problems


def test_grafana_schema_accepts_every_board_and_alert_rule(
    schema_checker: Path,
) -> None:
    assert schema_problems(BOARDS, schema_checker) == []


def test_grafana_schema_rejects_a_misspelt_key(schema_checker: Path) -> None:
    data = copy.deepcopy(BOARDS[0].json)
    data["panels"][0]["titel"] = data["panels"][0].pop("title")
    broken = Board("broken", "broken", data, ())
    problems = schema_problems([broken], schema_checker)
    assert any("titel" in p for p in problems), problems


# -- queries against a database with the demo mix ---------------------------

_HANDLERS: dict[str, Callable[[Engine, Callable[[], datetime]], BatchHandler]] = {
    "co2_account": Co2Handler,
    "fleet_status": FleetHandler,
    "mobility_count": MobilityHandler,
    "initiative_status": InitiativeHandler,
    "target": TargetsHandler,
}

#: Synthetic DK2020 targets of two municipalities. The demo mix holds none
#: yet (issue 8's demo adds them); the drill-down board shows a
#: municipality's own targets, so the filled database gets these.
DK2020_TARGETS = [
    {
        "schema": "target.v1",
        "event_id": f"test-dk2020:{code}:{year}",
        "producer": "pytest",
        "reported_at": "2023-06-01T00:00:00Z",
        "target_id": f"dk2020-{code}-{year}",
        "name": f"DK2020 {code}: -{pct} % i {year} (syntetisk)",
        "scope": code,
        "indicator": "co2e_total",
        "baseline_year": 1990,
        "target_year": year,
        "reduction_pct": pct,
        "version": 1,
        "source": "synthetic DK2020 target for the board tests",
    }
    for code in ("101", "147")
    for year, pct in ((2030, 70), (2045, 100))
]


#: The fill's "now": a few minutes ago, so the demo's dates are relative to
#: today and every panel shows rows in its board's default time range.
FILL_NOW = datetime.now(UTC) - timedelta(minutes=5)


class _KeptChannel:
    """A channel that takes every message (the fill runs no mail server)."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def send(self, message: OutgoingMessage) -> None:
        self.sent.append(message)


def send_alerts(engine: Engine, now: datetime) -> int:
    """Run the alert service's evaluation and sending once, as its timers do."""
    seed_demo_contacts(engine)
    rules = AlertRules(hold=timedelta(0), digest_window=timedelta(0))
    with engine.begin() as conn:
        evaluate(conn, now, rules, unpublished_status_changes(conn))
    with engine.begin() as conn:
        evaluate(conn, now + timedelta(seconds=1), rules)
    kept = _KeptChannel()
    sender = AlertSender(
        engine,
        lambda: now + timedelta(seconds=2),
        {"email": kept, "webhook": kept},
        rules,
        "http://localhost:3000",
    )
    sender.send_due()
    return len(kept.sent)


def fill_with_demo(engine: Engine, days: int = 2) -> None:
    """Run the whole demo mix through every service's handler, as on the topics,
    with counts up to `FILL_NOW`, and send the alerts it raises."""
    clock = lambda: FILL_NOW  # noqa: E731
    start = (FILL_NOW - timedelta(days=days)).date()
    by_kind: dict[str, list[Incoming]] = {}
    events = [(e.kind, e.body) for e in demo_events(start=start, days=days)]
    events += [("target", body) for body in DK2020_TARGETS]
    for i, (kind, body) in enumerate(events):
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        by_kind.setdefault(kind, []).append(Incoming(kind, value, f"demo:0:{i}"))
    for kind, make in _HANDLERS.items():
        handler = make(engine, clock)
        messages = by_kind.get(kind, [])
        for start_at in range(0, len(messages), 500):
            result = handler.handle(messages[start_at : start_at + 500])
            with engine.begin() as conn:
                store_dead_letters(conn, result.dead_letters)
    # The targets service last, as if every series change had reached it.
    TargetsHandler(engine, clock).refresh()
    send_alerts(engine, FILL_NOW)


@pytest.fixture(scope="module")
def query_checks(filled_engine: Engine) -> dict[str, object]:
    with filled_engine.connect() as conn:
        checks = run_queries(conn, BOARDS, datetime.now(UTC))
    return {check.where: check for check in checks}


def _query_names() -> list[str]:
    from klimapuls.boards.alert_rules import alert_rules

    names = [
        f"{b.uid} panel {q.panel_id} ({q.panel_title}) query {q.ref_id}"
        for b in BOARDS
        for q in b.queries
    ]
    names += [
        f"{b.uid} variable ${v['name']}"
        for b in BOARDS
        for v in b.json.get("templating", {}).get("list", [])
    ]
    return names + [f"alert rule {r.uid}" for r in alert_rules()]


@pytest.mark.parametrize("where", _query_names())
def test_every_panel_and_alert_query_answers_on_the_demo_data(
    where: str, query_checks: dict[str, object]
) -> None:
    check = query_checks[where]
    if check.skipped:  # type: ignore[attr-defined]
        pytest.skip(f"{where}: {check.skipped}")  # type: ignore[attr-defined]
    assert check.problem is None, (check.problem, check.sql)  # type: ignore[attr-defined]


def test_the_operations_board_shows_the_alerts_sent(
    filled_engine: Engine, query_checks: dict[str, object]
) -> None:
    board = next(b for b in BOARDS if b.uid == "klimapuls-operations")
    titles = {q.panel_title for q in board.queries}
    assert {
        "Sendte varsler i perioden",
        "Sendte varsler pr. regel",
        "Sendte varsler",
    } <= titles
    assert not [c for c in query_checks.values() if c.skipped]  # type: ignore[attr-defined]
    query = next(q for q in board.queries if q.panel_title == "Sendte varsler")
    span = TimeRange.of(board.json, datetime.now(UTC))
    with filled_engine.connect() as conn:
        rows = conn.execute(text(expand(query.raw_sql, span, {}))).all()
    assert rows and {r[1] for r in rows} <= {label for _, label in RULE_LABELS}


def test_the_operations_board_names_families_states_and_channels_in_danish(
    filled_engine: Engine,
) -> None:
    board = next(b for b in BOARDS if b.uid == "klimapuls-operations")
    span = TimeRange.of(board.json, datetime.now(UTC))
    raw = {"co2_account", "fleet_status", "mobility_count", "initiative_status"}
    raw |= {"firing", "resolved", "email", "target_status", "feed_stale"}
    seen: set[str] = set()
    with filled_engine.connect() as conn:
        for query in board.queries:
            result = conn.execute(text(expand(query.raw_sql, span, {})))
            names = list(result.keys())
            for row in result:
                for name, value in zip(names, row, strict=True):
                    if name in ("Familie", "Feed", "Tilstand", "Kanal", "Regel"):
                        seen.add(str(value))
    assert seen and not seen & raw, seen & raw
    assert {"CO2-regnskab", "Trafiktælling"} <= seen


def test_the_mobility_board_s_default_range_shows_every_year_and_path(
    filled_engine: Engine,
) -> None:
    board = next(b for b in BOARDS if b.uid == "klimapuls-mobility")
    span = TimeRange.of(board.json, datetime.now(UTC))
    times = []
    with filled_engine.connect() as conn:
        for query in board.queries:
            if query.columns[:1] != ("time",):
                continue
            rows = conn.execute(text(expand(query.raw_sql, span, {}))).all()
            assert rows, query.panel_title
            times += [r[0] for r in rows]
    assert all(span.start <= t <= span.end for t in times)
    years = {t.year for t in times}
    # Yearly counts since the demo's first year, and the paths to 2030 and 2035.
    assert min(years) <= 2022 and {2030, 2035} <= years


def test_the_drill_down_follows_its_template_variable(filled_engine: Engine) -> None:
    board = next(b for b in BOARDS if b.uid == "klimapuls-kommune")
    query = next(q for q in board.queries if "Kommunens mål" == q.panel_title)
    span = TimeRange.of(board.json, datetime.now(UTC))
    with filled_engine.connect() as conn:
        scopes = {
            code: {
                r[0]
                for r in conn.execute(
                    text(expand(query.raw_sql, span, {"kommune": code}))
                )
            }
            for code in ("101", "147", "153")
        }
    assert scopes["101"] == {"dk2020-101-2030", "dk2020-101-2045"}
    assert scopes["147"] == {"dk2020-147-2030", "dk2020-147-2045"}
    assert scopes["153"] == set()


# -- macros -----------------------------------------------------------------


def test_macros_expand_as_grafana_s_postgresql_datasource_does() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    span = TimeRange.of({"time": {"from": "now-1y", "to": "now"}}, now)
    sql = (
        "SELECT $__timeGroupAlias(bucket, $__interval), sum(trips) FROM board.x "
        "WHERE $__timeFilter(bucket) AND m = '${kommune}' AND n = '$kommune'"
    )
    out = expand(sql, span, {"kommune": "101"})
    assert interval_for(span) == "1d"
    assert 'floor(extract(epoch from bucket)/86400)*86400) AS "time"' in out
    assert "bucket BETWEEN '2025-12-01T00:00:00+00:00'::timestamptz" in out
    assert "m = '101' AND n = '101'" in out
    with pytest.raises(ValueError, match=r"\$region"):
        expand("SELECT '$region'", span, {})


# -- packaging and the command ---------------------------------------------


def test_the_installed_package_ships_every_generated_file() -> None:
    from importlib import resources

    shipped = resources.files("klimapuls.grafana")
    for name in generated_files():
        assert shipped.joinpath(name).is_file(), name


def test_validate_and_generate_check_pass_from_the_command_line() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["grafana", "validate", "--no-schema"])
    assert result.exit_code == 0, result.output
    assert "6 boards" in result.output and "0 problems" in result.output
    result = runner.invoke(app, ["grafana", "generate", "--check"])
    assert result.exit_code == 0, result.output


def test_validate_checks_the_folder_or_file_it_is_given(tmp_path: Path) -> None:
    runner = CliRunner()
    for given, counts in (
        (GRAFANA, "6 boards, 53 panel queries, 6 alert rules"),
        (GRAFANA / "dashboards", "6 boards"),
        (GRAFANA / "dashboards" / "klimapuls-co2.json", "1 board,"),
        (GRAFANA / "provisioning" / "alerting" / "klimapuls.yaml", "6 alert rules"),
    ):
        result = runner.invoke(app, ["grafana", "validate", "--no-schema", str(given)])
        assert result.exit_code == 0, result.output
        assert counts in result.output and "0 problems" in result.output
    # A board with a doubled panel id, a foreign datasource, and a broken file.
    data = copy.deepcopy(BOARDS[0].json)
    data["panels"][1]["id"] = data["panels"][0]["id"]
    data["panels"][-1]["targets"][0]["datasource"]["uid"] = "other"
    (tmp_path / "board.json").write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    rules = provisioning_file()
    rules["groups"][0]["rules"].append(rules["groups"][0]["rules"][0])
    (tmp_path / "rules.yaml").write_text(json.dumps(rules), encoding="utf-8")
    result = runner.invoke(app, ["grafana", "validate", "--no-schema", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "is used twice" in result.output
    assert "'other' is not 'klimapuls-pg'" in result.output
    assert "broken.json: not valid JSON" in result.output
    assert "alert rule uid klimapuls-status-worsening is used twice" in result.output
    assert "Traceback" not in result.output


def test_the_readme_lists_every_board_and_panel_with_its_question() -> None:
    from klimapuls.boards.catalogue import boards_markdown

    readme = (GRAFANA.parent / "README.md").read_text(encoding="utf-8")
    assert boards_markdown() in readme
    for picture in ("docs/report-overview.png", "docs/report-kommune.png"):
        assert f"({picture})" in readme and (GRAFANA.parent / picture).is_file()
