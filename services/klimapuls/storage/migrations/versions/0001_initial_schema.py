"""Initial schema: CO2 accounts, targets, series, progress, dead letters.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 17:55:33.189616
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The figure of each (municipality, year, sector) at its newest vintage; a
# sector split into subsectors sums them. Mirrors klimapuls.core.accounts.
CO2_ACCOUNT_CURRENT = """
CREATE VIEW co2_account_current AS
WITH newest AS (
    SELECT municipality_code, year, sector, max(vintage) AS vintage
    FROM co2_account
    GROUP BY municipality_code, year, sector
), parts AS (
    SELECT DISTINCT ON (
        a.municipality_code, a.year, a.sector, coalesce(a.subsector, '')
    )
        a.municipality_code, a.year, a.sector, a.vintage, a.tonnes_co2e
    FROM co2_account a
    JOIN newest n USING (municipality_code, year, sector, vintage)
    ORDER BY a.municipality_code, a.year, a.sector, coalesce(a.subsector, ''),
        a.reported_at DESC, a.event_id DESC
)
SELECT municipality_code, year, sector, vintage, sum(tonnes_co2e) AS tonnes_co2e
FROM parts
GROUP BY municipality_code, year, sector, vintage
"""


def upgrade() -> None:
    op.create_table(
        "co2_account",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("municipality_code", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sector", sa.Text(), nullable=False),
        sa.Column("subsector", sa.Text(), nullable=True),
        sa.Column("tonnes_co2e", sa.Numeric(), nullable=False),
        sa.Column("vintage", sa.Date(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("producer", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("payload_sha256", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_co2_account")),
    )
    op.create_index(
        op.f("ix_co2_account_municipality_code_year_sector_vintage"),
        "co2_account",
        ["municipality_code", "year", "sector", "vintage"],
        unique=False,
    )
    op.create_table(
        "dead_letter",
        sa.Column("dead_letter_id", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("event_id", sa.Text(), nullable=True),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("issues", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("rejected_by", sa.Text(), nullable=False),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("dead_letter_id", name=op.f("pk_dead_letter")),
    )
    op.create_index(
        op.f("ix_dead_letter_kind_rejected_at"),
        "dead_letter",
        ["kind", "rejected_at"],
        unique=False,
    )
    op.create_table(
        "emission_series",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("tonnes_co2e", sa.Double(), nullable=False),
        sa.Column("reported", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", "year", name=op.f("pk_emission_series")),
    )
    op.create_table(
        "target_progress",
        sa.Column("target_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("indicator", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("baseline_year", sa.Integer(), nullable=True),
        sa.Column("baseline_value", sa.Double(), nullable=True),
        sa.Column("target_year", sa.Integer(), nullable=False),
        sa.Column("target_value", sa.Double(), nullable=True),
        sa.Column("latest_year", sa.Integer(), nullable=True),
        sa.Column("latest_value", sa.Double(), nullable=True),
        sa.Column("reduction_achieved_pct", sa.Double(), nullable=True),
        sa.Column("path_value", sa.Double(), nullable=True),
        sa.Column("gap_to_path", sa.Double(), nullable=True),
        sa.Column("forecast_value", sa.Double(), nullable=True),
        sa.Column("required_annual_reduction", sa.Double(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("coverage_year", sa.Integer(), nullable=True),
        sa.Column("coverage_reported", sa.Integer(), nullable=False),
        sa.Column("coverage_expected", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target_id", name=op.f("pk_target_progress")),
    )
    op.create_table(
        "target_version",
        sa.Column("target_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("indicator", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("baseline_year", sa.Integer(), nullable=True),
        sa.Column("baseline_value", sa.Numeric(), nullable=True),
        sa.Column("target_year", sa.Integer(), nullable=False),
        sa.Column("reduction_pct", sa.Numeric(), nullable=True),
        sa.Column("increase_pct", sa.Numeric(), nullable=True),
        sa.Column("target_value", sa.Numeric(), nullable=True),
        sa.Column("source", sa.Text(), server_default="", nullable=False),
        sa.Column("producer", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("payload_sha256", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("target_id", "version", name=op.f("pk_target_version")),
        sa.UniqueConstraint("event_id", name=op.f("uq_target_version_event_id")),
    )
    op.create_table(
        "target_status_change",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("target_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_status", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("latest_year", sa.Integer(), nullable=True),
        sa.Column("latest_value", sa.Double(), nullable=True),
        sa.Column("gap_to_path", sa.Double(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["target_id", "version"],
            ["target_version.target_id", "target_version.version"],
            name=op.f("fk_target_status_change_target_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target_status_change")),
    )
    op.create_index(
        op.f("ix_target_status_change_target_id_changed_at"),
        "target_status_change",
        ["target_id", "changed_at"],
        unique=False,
    )
    op.execute(CO2_ACCOUNT_CURRENT)


def downgrade() -> None:
    op.execute("DROP VIEW co2_account_current")
    op.drop_index(
        op.f("ix_target_status_change_target_id_changed_at"),
        table_name="target_status_change",
    )
    op.drop_table("target_status_change")
    op.drop_table("target_version")
    op.drop_table("target_progress")
    op.drop_table("emission_series")
    op.drop_index(op.f("ix_dead_letter_kind_rejected_at"), table_name="dead_letter")
    op.drop_table("dead_letter")
    op.drop_index(
        op.f("ix_co2_account_municipality_code_year_sector_vintage"),
        table_name="co2_account",
    )
    op.drop_table("co2_account")
