"""Alert state: a worse severity must hold (`alert.worse_since`); alert inputs.

A firing alert whose severity worsens (at_risk -> off_track) sends its
"worsened" notice only once the worse state held for the hold time;
`worse_since` is when it began (None: not worse than notified).

The dead-letter-rate rule counts a producer's rejected and stored events of
its window by `received_at`: indexed on `dead_letter` and on the one large
event table, `mobility_count` (counting-site staleness reads the per-site
`mobility_feed` of 0013, no index needed there).

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RECEIVED = ("dead_letter", "mobility_count")


def upgrade() -> None:
    """Add the column and the indexes."""
    op.add_column(
        "alert", sa.Column("worse_since", sa.DateTime(timezone=True), nullable=True)
    )
    for table in _RECEIVED:
        op.create_index(op.f(f"ix_{table}_received_at"), table, ["received_at"])


def downgrade() -> None:
    """Drop them."""
    for table in _RECEIVED:
        op.drop_index(op.f(f"ix_{table}_received_at"), table_name=table)
    op.drop_column("alert", "worse_since")
