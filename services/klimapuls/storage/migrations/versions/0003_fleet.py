"""Fleet electrification tables.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROPULSIONS = ("diesel", "hvo", "biogas", "battery_electric", "hydrogen", "hybrid")

# The counting report of each (operator, contract, garage, date): the newest
# reported_at wins. Mirrors klimapuls.core.fleet.current_snapshots.
FLEET_STATUS_CURRENT = """
CREATE VIEW fleet_status_current AS
SELECT DISTINCT ON (operator, coalesce(contract, ''), coalesce(garage, ''), date)
    event_id, operator, contract, garage, municipality_code, date,
    diesel, hvo, biogas, battery_electric, hydrogen, hybrid,
    diesel + hvo + biogas + battery_electric + hydrogen + hybrid AS total_buses,
    reported_at
FROM fleet_status
ORDER BY operator, coalesce(contract, ''), coalesce(garage, ''), date,
    reported_at DESC, event_id DESC
"""

# The share on each scope's newest date in a year: the series share targets
# are measured on. Mirrors klimapuls.core.fleet.yearly_shares.
FLEET_SHARE_YEAR = """
CREATE VIEW fleet_share_year AS
SELECT DISTINCT ON (scope, extract(year FROM date))
    scope, extract(year FROM date)::integer AS year, date,
    total_buses, fossil_free_buses, zero_emission_buses,
    fossil_free_share, zero_emission_share, units
FROM fleet_share
ORDER BY scope, extract(year FROM date), date DESC
"""


def upgrade() -> None:
    op.create_table(
        "fleet_status",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("contract", sa.Text(), nullable=True),
        sa.Column("garage", sa.Text(), nullable=True),
        sa.Column("municipality_code", sa.Text(), nullable=True),
        sa.Column("date", sa.Date(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False)
            for name in _PROPULSIONS
        ),
        sa.Column("producer", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("payload_sha256", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_fleet_status")),
    )
    op.create_index(
        op.f("ix_fleet_status_operator_contract_garage_date"),
        "fleet_status",
        ["operator", "contract", "garage", "date"],
        unique=False,
    )
    op.create_table(
        "fleet_share",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("total_buses", sa.Integer(), nullable=False),
        sa.Column("fossil_free_buses", sa.Integer(), nullable=False),
        sa.Column("zero_emission_buses", sa.Integer(), nullable=False),
        sa.Column("fossil_free_share", sa.Double(), nullable=True),
        sa.Column("zero_emission_share", sa.Double(), nullable=True),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", "date", name=op.f("pk_fleet_share")),
    )
    op.execute(FLEET_STATUS_CURRENT)
    op.execute(FLEET_SHARE_YEAR)


def downgrade() -> None:
    op.execute("DROP VIEW fleet_share_year")
    op.execute("DROP VIEW fleet_status_current")
    op.drop_table("fleet_share")
    op.drop_index(
        op.f("ix_fleet_status_operator_contract_garage_date"),
        table_name="fleet_status",
    )
    op.drop_table("fleet_status")
