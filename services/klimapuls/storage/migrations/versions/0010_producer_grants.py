"""Producer grants and API tokens: who may write which scope, and how they log in.

`producer_grant` says which scopes (and families) a producer may write; the
services and the gateway check every inbound event against it.
`producer_token` holds the gateway's API tokens, hashed (SHA-256 of a
256-bit random secret); the secret itself is shown once at creation.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "producer_grant",
        sa.Column("producer", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("granted_by", sa.Text(), nullable=False),
        sa.Column(
            "granted_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("producer", "kind", "scope"),
    )
    op.create_table(
        "producer_token",
        sa.Column("token_id", sa.Text(), primary_key=True),
        sa.Column("producer", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.Text(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("producer_token_producer", "producer_token", ["producer"])


def downgrade() -> None:
    op.drop_index("producer_token_producer", table_name="producer_token")
    op.drop_table("producer_token")
    op.drop_table("producer_grant")
