"""Truth of numbers: reports without tovholdere, known-on indexes, restatements.

- `initiative_status_report.tovholdere` may be NULL: a report that does not
  name who held the initiative (an older round of a re-imported table)
  leaves the set as it was.
- An index of the count keys that have a restated row (the restatement
  audit loads every count of those keys).

Revision ID: 0011
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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


def downgrade() -> None:
    op.execute("DROP INDEX ix_mobility_count_restated")
    op.execute(
        "UPDATE initiative_status_report SET tovholdere = '{}' WHERE tovholdere IS NULL"
    )
    op.execute(
        "ALTER TABLE initiative_status_report ALTER COLUMN tovholdere SET NOT NULL"
    )
