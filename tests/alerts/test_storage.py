"""The alert tables: migration 0009 matches the models; the board view reads."""

from __future__ import annotations

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
