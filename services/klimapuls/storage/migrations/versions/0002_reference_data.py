"""Reference data: scopes, indicator series, targets without a deadline.

- `scope`: the 29 municipalities, Region Hovedstaden (`1084`), Denmark (`DK`)
  and Movia (`movia`), seeded from the package's reference data as of this
  revision (`storage.seed` upserts later revisions of the names).
- `indicator_series`: yearly series of the non-emission indicators, so the
  target engine can recompute any target at any as-of date.
- `target_year` becomes nullable: a target may state no deadline.

Seed targets are stored by `storage.seed` like any target event (validated,
idempotent), not here, so a revised seed target becomes a new version.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from klimapuls.core.reference import scopes

    scope = op.create_table(
        "scope",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_scope")),
        sa.CheckConstraint(
            "kind IN ('municipality', 'region', 'country', 'operator')",
            name="ck_scope_kind",
        ),
    )
    op.bulk_insert(
        scope, [{"code": s.code, "name": s.name, "kind": s.kind} for s in scopes()]
    )
    op.create_table(
        "indicator_series",
        sa.Column("indicator", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("reported", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint(
            "indicator", "scope", "year", name=op.f("pk_indicator_series")
        ),
    )
    op.alter_column("target_version", "target_year", nullable=True)
    op.alter_column("target_progress", "target_year", nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM target_progress WHERE target_year IS NULL")
    op.alter_column("target_progress", "target_year", nullable=False)
    op.execute(
        "DELETE FROM target_status_change WHERE (target_id, version) IN "
        "(SELECT target_id, version FROM target_version WHERE target_year IS NULL)"
    )
    op.execute("DELETE FROM target_version WHERE target_year IS NULL")
    op.alter_column("target_version", "target_year", nullable=False)
    op.drop_table("indicator_series")
    op.drop_table("scope")
