"""Alert state: a worse severity must hold (`alert.worse_since`).

A firing alert whose severity worsens (at_risk -> off_track) sends its
"worsened" notice only once the worse state held for the hold time;
`worse_since` is when it began (None: not worse than notified).

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


def upgrade() -> None:
    """Add the column."""
    op.add_column(
        "alert", sa.Column("worse_since", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Drop the column."""
    op.drop_column("alert", "worse_since")
