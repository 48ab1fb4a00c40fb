"""The measured series of every target, kept by its one owner (the targets service).

- `target_series`: per target and year, the value the target is evaluated
  against (`klimapuls.core.progress.MeasuredSeries`), with its coverage.
  For bike trips that is the comparable value: counted years compare like
  with like (sites that counted bikes in all 12 months of both years), so
  a site added mid-series does not make the trend jump. The targets
  service rewrites it on every recomputation, from the same facts as
  `target_progress`.
- `board.target_series`: the view the boards read (the bike panel reads it
  instead of recomputing from the counts).

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VIEW = """
CREATE VIEW board.target_series AS
SELECT s.target_id, s.version, s.indicator, s.scope, s.year, s.value,
    s.reported, s.expected, s.reported < s.expected AS provisional
FROM target_series s
"""
_COMMENT = (
    "The series each target is evaluated against, per year (the targets "
    "service writes it from the core): bike trips compared like with like "
    "(sites counted in both years); provisional while a year is not complete."
)


def upgrade() -> None:
    op.create_table(
        "target_series",
        sa.Column("target_id", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("indicator", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("reported", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("target_id", "year", name="pk_target_series"),
    )
    op.execute(_VIEW)
    op.execute(f"COMMENT ON VIEW board.target_series IS '{_COMMENT}'")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS board.target_series")
    op.drop_table("target_series")
