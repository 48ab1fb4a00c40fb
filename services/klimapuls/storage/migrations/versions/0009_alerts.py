"""Alerts: state, notices, the send log, contacts, acknowledgements.

Also: the targets service logs an evaluation whenever a target's forecast
moves (`previous_forecast_value` says from where), so the alert rules can
compare forecasts between evaluations; and `board.alerts_sent` for the
boards' "alerts sent" panel.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = postgresql.JSONB()
TEXTS = postgresql.ARRAY(sa.Text())

ALERTS_SENT = """
CREATE VIEW board.alerts_sent AS
SELECT m.sent_at, a.key AS alert_key, a.rule, a.target_id, a.initiative_id,
    a.scope, d.recipient, d.address, m.channel, n.kind AS state,
    a.state AS alert_state, a.title, m.message_key
FROM alert_message m
JOIN alert_delivery d ON d.message_id = m.message_id
JOIN alert_notice n ON n.notice_id = d.notice_id
JOIN alert a ON a.alert_id = n.alert_id
WHERE m.state = 'sent'
"""


def upgrade() -> None:
    op.add_column(
        "target_status_change",
        sa.Column("previous_forecast_value", sa.Double(), nullable=True),
    )
    op.create_table(
        "alert_observation",
        sa.Column("target_id", sa.Text(), primary_key=True),
        sa.Column("change_id", sa.BigInteger(), nullable=False),
        sa.Column("observation", JSON, nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "alert",
        sa.Column("alert_id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("parties", TEXTS, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("facts", JSON, nullable=False),
        sa.Column("target_id", sa.Text()),
        sa.Column("initiative_id", sa.Text()),
        sa.Column("inhibited_by", sa.Text()),
        sa.Column("notified_severity", sa.Text()),
        sa.Column("notified_facts", JSON),
        sa.Column("fired_at", TS),
        sa.Column("notified_at", TS),
        sa.Column("acknowledged_at", TS),
        sa.Column("acknowledged_by", sa.Text()),
        sa.Column("escalated_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'firing', 'acknowledged', 'resolved', 'cleared')",
            name="ck_alert_state",
        ),
    )
    op.create_index(
        "uq_alert_open_key",
        "alert",
        ["key"],
        unique=True,
        postgresql_where=sa.text("state IN ('pending', 'firing', 'acknowledged')"),
    )
    op.create_index("ix_alert_state", "alert", ["state"])
    op.create_table(
        "alert_notice",
        sa.Column("notice_id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey("alert.alert_id", name="fk_alert_notice_alert"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("record", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "alert_message",
        sa.Column("message_id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("message_key", sa.Text(), nullable=False, unique=True),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("alert_keys", TEXTS, nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
    )
    op.create_index(
        "ix_alert_message_state_next_attempt_at",
        "alert_message",
        ["state", "next_attempt_at"],
    )
    op.create_table(
        "alert_delivery",
        sa.Column("delivery_id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "notice_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "alert_notice.notice_id", name="fk_alert_delivery_alert_notice"
            ),
            nullable=False,
        ),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("party", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column(
            "message_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "alert_message.message_id", name="fk_alert_delivery_alert_message"
            ),
        ),
    )
    op.create_index("ix_alert_delivery_message_id", "alert_delivery", ["message_id"])
    op.create_table(
        "alert_evaluation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("evaluated_at", TS, nullable=False),
        sa.Column("observed_id", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "alert_contact",
        sa.Column("contact_id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("party", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
    )
    op.create_index(
        "uq_alert_contact_route",
        "alert_contact",
        ["party", "topic", "channel", "address"],
        unique=True,
    )
    op.create_table(
        "alert_acknowledgement",
        sa.Column("ack_id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "alert_id",
            sa.BigInteger(),
            sa.ForeignKey("alert.alert_id", name="fk_alert_acknowledgement_alert"),
            nullable=False,
        ),
        sa.Column("acknowledged_at", TS, nullable=False),
        sa.Column("acknowledged_by", sa.Text(), nullable=False),
        sa.Column("note", sa.Text()),
    )
    op.execute(ALERTS_SENT)
    op.execute(
        "COMMENT ON VIEW board.alerts_sent IS "
        "'Every notice sent: when, which alert, to whom, on which channel.'"
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS board.alerts_sent")
    for table in (
        "alert_acknowledgement",
        "alert_contact",
        "alert_evaluation",
        "alert_delivery",
        "alert_message",
        "alert_notice",
        "alert",
        "alert_observation",
    ):
        op.drop_table(table)
    op.drop_column("target_status_change", "previous_forecast_value")
