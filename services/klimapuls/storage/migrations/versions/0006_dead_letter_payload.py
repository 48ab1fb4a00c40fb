"""Dead letters keep the raw payload once, safely encoded and cut.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "dead_letter",
        sa.Column(
            "payload_encoding", sa.Text(), server_default="utf-8", nullable=False
        ),
    )
    op.add_column("dead_letter", sa.Column("payload_size", sa.BigInteger()))
    op.add_column("dead_letter", sa.Column("payload_sha256", sa.Text()))
    op.add_column(
        "dead_letter",
        sa.Column(
            "payload_truncated",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
        ),
    )
    # Rows stored before this revision held the whole payload as text.
    op.execute(
        "UPDATE dead_letter SET payload_size = octet_length(payload), "
        "payload_sha256 = encode(sha256(convert_to(payload, 'UTF8')), 'hex')"
    )


def downgrade() -> None:
    for column in (
        "payload_truncated",
        "payload_sha256",
        "payload_size",
        "payload_encoding",
    ):
        op.drop_column("dead_letter", column)
