"""Counts that restate a stored count say so (`mobility_count.restates`).

The hour rollup adds the counts of an (hour, site) to its row instead of
summing the hour again, unless one of them restates a count (or is itself
restated): only then can a count already in the row have to leave it. The
counts stored so far are not yet marked, and those above the watermark may
already be in their hour rows: 0018's refresh summed a touched hour from
every current count, also those committed after the `committed_seq` it
rolled up to. Adding those again would count them twice, so every count
not yet rolled up is marked: the first refreshes sum their hours again,
as 0018's did (marking too many only means summing their hour again).

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MARK_PENDING = """
UPDATE mobility_count SET restates = true
WHERE seq > coalesce(
    (SELECT watermark FROM mobility_rollup_state WHERE name = 'rollups'), 0)
"""


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting rows.
    op.execute(
        "ALTER TABLE mobility_count ADD COLUMN restates boolean NOT NULL DEFAULT false"
    )
    # Our own rollups only: TimescaleDB's continuous aggregates have no watermark.
    tables = op.get_bind().execute(
        sa.text("SELECT to_regclass('mobility_rollup_state') IS NOT NULL")
    )
    if tables.scalar():
        op.execute(_MARK_PENDING)


def downgrade() -> None:
    op.execute("ALTER TABLE mobility_count DROP COLUMN restates")
