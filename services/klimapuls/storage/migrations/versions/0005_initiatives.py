"""Initiatives, status reports and tovholdere.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The report that counts per (initiative, round): the newest reported_at.
# Mirrors klimapuls.core.initiatives.current_reports.
STATUS_CURRENT = """
CREATE VIEW initiative_status_current AS
SELECT DISTINCT ON (initiative_id, round)
    initiative_id, round, status, tovholdere, effective_date, estimate_dkk_m,
    note, event_id, producer, reported_at
FROM initiative_status_report
ORDER BY initiative_id, round, reported_at DESC, event_id DESC
"""

# A programme's rounds are those any of its initiatives reported in.
REPORTING_ROUND = """
CREATE VIEW initiative_reporting_round AS
SELECT DISTINCT i.programme, r.round,
    to_date(r.round || '-01', 'YYYY-MM-DD') AS round_start
FROM initiative_status_report r
JOIN initiative i USING (initiative_id)
"""

# Mirrors klimapuls.core.initiatives.missing_reports: expected from `since`,
# not after a round reported the initiative completed or stopped; with the
# tovholdere in charge at the start of the round (who should have reported).
MISSING_REPORT = """
CREATE VIEW initiative_missing_report AS
SELECT rr.programme, rr.round, i.initiative_id, i.name, i.group_name,
    coalesce((
        SELECT array_agg(a.tovholder ORDER BY a.tovholder)
        FROM tovholder_assignment a
        WHERE a.initiative_id = i.initiative_id
          AND (a.valid_from IS NULL OR a.valid_from <= rr.round_start)
          AND (a.valid_to IS NULL OR rr.round_start < a.valid_to)
    ), '{}') AS tovholdere
FROM initiative_reporting_round rr
JOIN initiative i
  ON i.programme = rr.programme
 AND (i.since IS NULL OR i.since <= rr.round_start)
WHERE NOT EXISTS (
    SELECT 1 FROM initiative_status_report s
    WHERE s.initiative_id = i.initiative_id AND s.round = rr.round
) AND NOT EXISTS (
    SELECT 1 FROM initiative_status_current c
    WHERE c.initiative_id = i.initiative_id AND c.round < rr.round
      AND c.status IN ('completed', 'stopped')
)
"""

# Mirrors klimapuls.core.initiatives.without_tovholder.
WITHOUT_TOVHOLDER = """
CREATE VIEW initiative_without_tovholder AS
SELECT i.initiative_id, i.name, i.programme, i.group_name, i.estimate_dkk_m,
    i.note
FROM initiative i
WHERE NOT EXISTS (
    SELECT 1 FROM tovholder_assignment a
    WHERE a.initiative_id = i.initiative_id AND a.valid_to IS NULL
) AND NOT EXISTS (
    SELECT 1 FROM initiative_status_current c
    WHERE c.initiative_id = i.initiative_id
      AND c.status IN ('completed', 'stopped')
)
"""

VIEWS = (
    "initiative_without_tovholder",
    "initiative_missing_report",
    "initiative_reporting_round",
    "initiative_status_current",
)


def upgrade() -> None:
    op.create_table(
        "tovholder",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("municipality_code", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tovholder")),
    )
    op.create_table(
        "initiative",
        sa.Column("initiative_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("programme", sa.Text(), nullable=False),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("estimate_dkk_m", sa.Double(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("initiative_id", name=op.f("pk_initiative")),
    )
    op.create_index(
        op.f("ix_initiative_programme"), "initiative", ["programme"], unique=False
    )
    op.create_table(
        "initiative_tovholder",
        sa.Column("initiative_id", sa.Text(), nullable=False),
        sa.Column("tovholder", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "initiative_id", "tovholder", name=op.f("pk_initiative_tovholder")
        ),
    )
    op.create_table(
        "initiative_status_report",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("initiative_id", sa.Text(), nullable=False),
        sa.Column("round", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("tovholdere", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=True),
        sa.Column("estimate_dkk_m", sa.Double(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("producer", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("payload_sha256", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_initiative_status_report")),
    )
    op.create_index(
        op.f("ix_initiative_status_report_initiative_id_round_reported_at"),
        "initiative_status_report",
        ["initiative_id", "round", "reported_at"],
        unique=False,
    )
    op.create_table(
        "tovholder_assignment",
        sa.Column("initiative_id", sa.Text(), nullable=False),
        sa.Column("tovholder", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("from_round", sa.Text(), nullable=True),
        sa.Column("to_round", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "initiative_id", "tovholder", "seq", name=op.f("pk_tovholder_assignment")
        ),
    )
    op.create_table(
        "tovholder_handover",
        sa.Column("initiative_id", sa.Text(), nullable=False),
        sa.Column("round", sa.Text(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("previous", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("new", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint(
            "initiative_id", "round", name=op.f("pk_tovholder_handover")
        ),
    )
    op.execute(STATUS_CURRENT)
    op.execute(REPORTING_ROUND)
    op.execute(MISSING_REPORT)
    op.execute(WITHOUT_TOVHOLDER)


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW {view}")
    op.drop_table("tovholder_handover")
    op.drop_table("tovholder_assignment")
    op.drop_index(
        op.f("ix_initiative_status_report_initiative_id_round_reported_at"),
        table_name="initiative_status_report",
    )
    op.drop_table("initiative_status_report")
    op.drop_table("initiative_tovholder")
    op.drop_index(op.f("ix_initiative_programme"), table_name="initiative")
    op.drop_table("initiative")
    op.drop_table("tovholder")
