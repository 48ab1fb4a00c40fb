"""The alert tables: migrations 0009 and 0014 match the models; the board view reads."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData

from klimapuls.storage.models_alerts import (
    AlertAcknowledgementRow,
    AlertContactRow,
    AlertDeliveryRow,
    AlertEvaluationRow,
    AlertMessageRow,
    AlertNoticeRow,
    AlertObservationRow,
    AlertRow,
)
from tests.helpers import rows

MODELS = (
    AlertAcknowledgementRow,
    AlertContactRow,
    AlertDeliveryRow,
    AlertEvaluationRow,
    AlertMessageRow,
    AlertNoticeRow,
    AlertObservationRow,
    AlertRow,
)


def test_the_alerts_migration_creates_the_tables_of_the_models(engine: Engine) -> None:
    wanted = MetaData()
    for model in MODELS:
        model.__table__.to_metadata(wanted)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, kind, parent: (
                    kind != "table" or name in wanted.tables
                )
            },
        )
        assert compare_metadata(context, wanted) == []


def test_the_board_view_of_alerts_sent_has_the_columns_the_panel_reads(
    engine: Engine,
) -> None:
    columns = rows(
        engine,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'board' AND table_name = 'alerts_sent'",
    )
    names = {c["column_name"] for c in columns}
    assert {
        "sent_at",
        "alert_key",
        "rule",
        "target_id",
        "initiative_id",
        "scope",
        "recipient",
        "channel",
        "state",
    } <= names


def test_a_worse_state_waiting_for_its_hold_is_kept_across_evaluations(
    engine: Engine,
) -> None:
    from datetime import UTC, datetime, timedelta

    from klimapuls.core.alert_state import step
    from klimapuls.core.alerting import AlertRules, Condition
    from klimapuls.storage import alerts
    from klimapuls.storage.db import in_transaction

    t0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
    rules = AlertRules(hold=timedelta(hours=1))

    def slip(severity: str) -> Condition:
        return Condition(
            "target_status", "t", "151", "2030", severity, "co2", ("Ballerup",), "T"
        )

    def evaluate(severity: str, now: datetime) -> list[str]:
        def work(conn: Any) -> list[str]:
            decided = step(alerts.open_alerts(conn), [slip(severity)], [], now, rules)
            alerts.write_alerts(conn, decided.alerts)
            return [n.kind for n in decided.notices]

        return in_transaction(engine, work)

    assert evaluate("at_risk", t0) == []
    assert evaluate("at_risk", t0 + timedelta(hours=1)) == ["firing"]
    worse_at = t0 + timedelta(hours=2)
    assert evaluate("off_track", worse_at) == []
    [stored] = in_transaction(engine, alerts.open_alerts)
    assert stored.worse_since == worse_at
    assert evaluate("off_track", worse_at + timedelta(minutes=30)) == []
    assert evaluate("off_track", worse_at + timedelta(hours=1)) == ["worsened"]
    [stored] = in_transaction(engine, alerts.open_alerts)
    assert stored.worse_since is None and stored.notified_severity == "off_track"
