"""The alert tables: migrations 0009 and 0014 match the models; the board view reads."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, text

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


def test_counting_site_feeds_come_from_the_mobility_feed_table(engine: Engine) -> None:
    import json
    from datetime import UTC, datetime

    from klimapuls.core.batch import Incoming
    from klimapuls.mobility.handlers import MobilityHandler
    from klimapuls.storage import alert_inputs
    from klimapuls.storage.db import in_transaction
    from tests.helpers import scalar
    from tests.mobility.factories import count_event

    now = datetime(2025, 6, 10, tzinfo=UTC)
    events = [
        count_event("site-a", "bike", "2025-06-01T08:00:00+00:00", 40),
        count_event("site-a", "bike", "2025-06-01T09:00:00+00:00", 41),
        count_event(
            "site-b", "bike", "2025-05-01T08:00:00+00:00", 7, municipality_code="101"
        ),
    ]
    result = MobilityHandler(engine, lambda: now).handle(
        [
            Incoming("mobility_count", json.dumps(e).encode(), f"m:0:{i}")
            for i, e in enumerate(events)
        ]
    )
    assert result.stored == 3

    def sites() -> dict[str, tuple[str, datetime]]:
        found = in_transaction(engine, alert_inputs.feeds)
        return {
            f.feed_id: (f.scope, f.last_seen)
            for f in found
            if f.family == "counting_site"
        }

    expected = {
        "site-a": ("147", datetime(2025, 6, 1, 10, tzinfo=UTC)),
        "site-b": ("101", datetime(2025, 5, 1, 9, tzinfo=UTC)),
    }
    assert sites() == expected
    # The rule reads the per-site summary the mobility service keeps, not
    # every raw count: it holds even when the raw rows are gone.
    in_transaction(
        engine, lambda conn: conn.execute(text("DELETE FROM mobility_count"))
    )
    assert sites() == expected
    assert scalar(engine, "SELECT count(*) FROM mobility_count") == 0


def test_the_dead_letter_rate_window_is_indexed(engine: Engine) -> None:
    indexed = {
        (r["tablename"], r["indexdef"].split("(", 1)[1].rstrip(")"))
        for r in rows(
            engine,
            "SELECT tablename, indexdef FROM pg_indexes "
            "WHERE tablename IN ('dead_letter', 'mobility_count')",
        )
    }
    assert ("dead_letter", "received_at") in indexed
    assert ("mobility_count", "received_at") in indexed
