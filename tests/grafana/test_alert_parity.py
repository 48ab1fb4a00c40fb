"""Grafana's alert rules and the alert service's rules fire for the same keys.

The same scenarios (the demo mix, plus logged evaluations of DK2020 targets
whose forecasts worsen, recover, drop to 0 or start from 0) are evaluated by
`klimapuls.core.alerting` on the inputs the alert service loads, and by the
Grafana rule queries on the board views, as Grafana's read-only role.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from klimapuls.boards.alert_rules import alert_rules, provisioning_file
from klimapuls.cli import app
from klimapuls.core.alerting import (
    AlertInputs,
    AlertRules,
    TargetObservation,
    conditions,
    observe_all,
)
from klimapuls.core.messages import TargetStatusChange
from klimapuls.storage import alert_inputs
from klimapuls.storage.grafana_reader import READER_ROLE, set_reader_password

#: (target, [(previous_status, status, previous_forecast, forecast[, minutes
#: since the row before, default 1])]), logged after the demo's own
#: evaluations. The first row of each closes whatever the demo left open (a
#: forecast far below any real one).
SCENARIOS = {
    # Worsens by 40 %, then the forecast is 0: the open worsening is kept.
    "dk2020-101-2030": [
        ("on_track", "on_track", 1000.0, 1000.0),
        ("on_track", "on_track", 1000.0, 1400.0),
        ("on_track", "on_track", 1400.0, 0.0),
    ],
    # Worsens, forecast 0, then back within 10 % of where it stood: resolved.
    "dk2020-101-2045": [
        ("on_track", "on_track", 1000.0, 1000.0),
        ("on_track", "on_track", 1000.0, 1400.0),
        ("on_track", "on_track", 1400.0, 0.0),
        ("on_track", "on_track", 0.0, 1050.0),
    ],
    # From 0 (no forecast) to a forecast: nothing to compare, no worsening.
    # Then achieved for a minute (an account upload half-way): nothing lost.
    "dk2020-147-2030": [
        ("on_track", "on_track", 10.0, 10.0),
        ("on_track", "on_track", 10.0, 0.0),
        ("on_track", "on_track", 0.0, 100.0),
        ("on_track", "achieved", 100.0, 100.0),
        ("achieved", "on_track", 100.0, 100.0),
    ],
    # Lost its achievement of 90 minutes, and the forecast worsened by 30 %
    # then 25 %.
    "dk2020-147-2045": [
        ("on_track", "achieved", 1000.0, 1000.0),
        ("achieved", "on_track", 1000.0, 1300.0, 90),
        ("on_track", "on_track", 1300.0, 1250.0),
    ],
}


def _log(conn: Connection) -> None:
    at = datetime.now(UTC) - timedelta(hours=3)
    for target_id, rows in SCENARIOS.items():
        _, code, year = target_id.split("-")
        for before, status, previous_forecast, forecast, *gap in rows:
            at += timedelta(minutes=gap[0] if gap else 1)
            conn.execute(
                text(
                    "INSERT INTO target_status_change (target_id, version, name, "
                    "scope, indicator, unit, previous_status, status, "
                    "previous_stale, stale, target_year, target_value, "
                    "forecast_value, previous_forecast_value, changed_at) VALUES "
                    "(:t, 1, :t, :scope, 'co2e_total', 't CO2e', :before, :status, "
                    "false, false, :year, 0, :forecast, :previous, :at)"
                ),
                {
                    "t": target_id,
                    "scope": code,
                    "before": before,
                    "status": status,
                    "year": int(year),
                    "forecast": forecast,
                    "previous": previous_forecast,
                    "at": at,
                },
            )


@pytest.fixture(scope="module")
def scenario_engine(filled_engine: Engine) -> Iterator[Engine]:
    with filled_engine.begin() as conn:
        _log(conn)
    yield filled_engine


def _core_keys(conn: Connection, rules: AlertRules, now: datetime) -> set[str]:
    """What the alert service raises: its loaders, `observe_all`, `conditions`."""
    fields = TargetStatusChange.__dataclass_fields__
    changes = [
        TargetStatusChange(**{k: v for k, v in row.items() if k in fields})
        for row in conn.execute(
            text("SELECT * FROM target_status_change ORDER BY id")
        ).mappings()
    ]
    observations: dict[str, TargetObservation] = {}
    observe_all(observations, changes, rules)
    listed, reports = alert_inputs.initiatives_and_reports(conn)
    inputs = AlertInputs(
        observations=list(observations.values()),
        feeds=alert_inputs.feeds(conn),
        initiatives=listed,
        reports=reports,
        dead_letters=alert_inputs.dead_letter_counts(
            conn, now - rules.dead_letter_window
        ),
        vintages=alert_inputs.newest_vintages(conn),
    )
    return {c.key for c in conditions(inputs, now, rules)}


def _grafana_keys(conn: Connection, rules: AlertRules) -> dict[str, set[str]]:
    """What Grafana's rules fire: each query's rows past its threshold."""
    conn.execute(text(f"SET ROLE {READER_ROLE}"))
    try:
        return {
            rule.rule: {
                row["alert_key"]
                for row in conn.execute(text(rule.sql)).mappings()
                if row[rule.value_column] > rule.threshold
            }
            for rule in alert_rules(rules)
        }
    finally:
        conn.execute(text("RESET ROLE"))


@pytest.mark.parametrize(
    "rules",
    [
        AlertRules(),
        AlertRules(
            hold=timedelta(hours=2),
            forecast_worsen_pct=27.0,
            co2_max_lag_years=0,
            site_max_silence=timedelta(hours=1),
            fleet_max_silence=timedelta(days=400),
            dead_letter_max_pct=0.5,
            dead_letter_min_events=2,
            report_grace=timedelta(days=380),
        ),
    ],
    ids=["defaults", "other-settings"],
)
def test_grafana_rules_fire_exactly_where_the_alert_service_does(
    scenario_engine: Engine, rules: AlertRules
) -> None:
    with scenario_engine.connect() as conn:
        now = conn.execute(text("SELECT now()")).scalar_one()
        core = _core_keys(conn, rules, now)
        grafana = _grafana_keys(conn, rules)
    for rule, keys in grafana.items():
        expected = {k for k in core if k.startswith(f"{rule}:")}
        assert keys == expected, rule
    assert set().union(*grafana.values()) == core
    # The scenarios: a 0 forecast keeps the open worsening; a recovery ends
    # it; a forecast from 0 is no worsening; a lost achievement is a slip.
    assert "forecast_worsened:dk2020-101-2030:101:2030" in core
    assert "forecast_worsened:dk2020-101-2045:101:2045" not in core
    assert "forecast_worsened:dk2020-147-2030:147:2030" not in core
    # An achievement counts once it held for the hold time.
    lost = "target_status:dk2020-147-2045:147:2045" in core
    assert lost == (rules.hold <= timedelta(minutes=90))
    assert "target_status:dk2020-147-2030:147:2030" not in core
    held = "forecast_worsened:dk2020-147-2045:147:2045"
    assert (held in core) == (rules.forecast_worsen_pct < 25)
    # The demo's feeds are current (dated up to now): stale only for the
    # stricter cadences; its few rejected events pass only the lower threshold.
    stale = any(k.startswith("feed_stale:") for k in core)
    assert stale == (rules.co2_max_lag_years == 0)
    rated = any(k.startswith("dead_letter_rate:") for k in core)
    assert rated == (rules.dead_letter_max_pct < 1)
    # A round's report is missing only `report_grace` after the round ended
    # (the first of the next month), and older rounds keep firing.
    rounds = [k.rsplit(":", 1)[1] for k in core if k.startswith("missing_report:")]
    assert len(set(rounds)) > 1
    for round_ in rounds:
        year, month = map(int, round_.split("-"))
        ended = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        assert ended + rules.report_grace <= now


def test_thresholds_and_hold_time_come_from_the_alert_settings() -> None:
    rules = AlertRules(
        hold=timedelta(minutes=90), forecast_worsen_pct=27.0, dead_letter_max_pct=7
    )
    group = provisioning_file(rules)["groups"][0]
    assert {r["for"] for r in group["rules"]} == {"90m"}
    by_uid = {r.uid: r for r in alert_rules(rules)}
    assert by_uid["klimapuls-dead-letter-rate"].threshold == 7
    assert "> 27.0" in by_uid["klimapuls-forecast-worsening"].sql
    assert provisioning_file()["groups"][0]["rules"][0]["for"] == "1h"


def test_grafana_s_role_reads_only_the_board_views(engine: Engine) -> None:
    with engine.connect() as conn:
        allowed = conn.execute(
            text(
                "SELECT has_schema_privilege(:r, 'board', 'USAGE'), "
                "has_table_privilege(:r, 'board.status_changes', 'SELECT'), "
                "has_table_privilege(:r, 'target_status_change', 'SELECT'), "
                "has_table_privilege(:r, 'alert_contact', 'SELECT')"
            ),
            {"r": READER_ROLE},
        ).one()
    assert tuple(allowed) == (True, True, False, False)


def test_db_upgrade_lets_grafana_s_role_log_in_with_a_scram_digest(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GRAFANA_DB_PASSWORD", "s3cret-for-grafana")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        login, stored = conn.execute(
            text("SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = :r"),
            {"r": READER_ROLE},
        ).one()
    assert login is True
    assert stored.startswith("SCRAM-SHA-256$") and "s3cret" not in stored
    reader = engine.url.set(username=READER_ROLE, password="s3cret-for-grafana")
    dsn = reader.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM board.status_changes").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM target_status_change")
    set_reader_password(engine, os.urandom(16).hex())
