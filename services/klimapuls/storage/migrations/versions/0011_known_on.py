"""Truth of numbers: reports without tovholdere, known-on indexes, restatements.

- `initiative_status_report.tovholdere` may be NULL: a report that does not
  name who held the initiative (an older round of a re-imported table)
  leaves the set as it was.
- An index of the count keys that have a restated row (the restatement
  audit loads every count of those keys).
- `restatement`: every figure a later report changed (written by the
  targets service from the core's audit), and `board.restatements` for the
  boards and the report.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BOARD_VIEW = """
CREATE VIEW board.restatements AS
SELECT restated_at, scope, municipality_code, year, sector, old_value,
    new_value, change_pct, old_vintage, new_vintage, producer,
    family, period, detail, unit, regional
FROM restatement
"""
_BOARD_COMMENT = (
    "Every figure a later report changed: old and new value, vintages, "
    "producer (newest first by restated_at)."
)


def upgrade() -> None:
    op.execute(
        "ALTER TABLE initiative_status_report ALTER COLUMN tovholdere DROP NOT NULL"
    )
    # Few rows are restated: the audit finds their keys without a scan.
    op.execute(
        "CREATE INDEX ix_mobility_count_restated ON mobility_count "
        "(site_id, mode, direction, interval_start, interval_end) "
        "WHERE NOT is_current"
    )
    op.create_table(
        "restatement",
        sa.Column("family", sa.Text(), nullable=False),
        sa.Column("restated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("sector", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("producer", sa.Text(), nullable=False),
        sa.Column("municipality_code", sa.Text()),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("old_value", sa.Double(), nullable=False),
        sa.Column("new_value", sa.Double(), nullable=False),
        sa.Column("change_pct", sa.Double()),
        sa.Column("old_vintage", sa.Date()),
        sa.Column("new_vintage", sa.Date()),
        sa.Column("regional", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "family",
            "restated_at",
            "scope",
            "period",
            "sector",
            "detail",
            "producer",
            name=op.f("pk_restatement"),
        ),
    )
    op.create_index(
        op.f("ix_restatement_scope_restated_at"),
        "restatement",
        ["scope", "restated_at"],
    )
    op.execute(_BOARD_VIEW)
    op.execute(f"COMMENT ON VIEW board.restatements IS '{_BOARD_COMMENT}'")


def downgrade() -> None:
    op.execute("DROP VIEW board.restatements")
    op.drop_table("restatement")
    op.execute("DROP INDEX ix_mobility_count_restated")
    op.execute(
        "UPDATE initiative_status_report SET tovholdere = '{}' WHERE tovholdere IS NULL"
    )
    op.execute(
        "ALTER TABLE initiative_status_report ALTER COLUMN tovholdere SET NOT NULL"
    )
