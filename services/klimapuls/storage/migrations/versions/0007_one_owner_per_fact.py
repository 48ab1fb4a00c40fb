"""One owner per fact: target status changes carry their figures, path points.

- `target_status_change` gains the figures of a `target_status.v1` message
  (name, scope, indicator, unit, previous staleness, target, path, forecast,
  required rate), backfilled from the target versions where known;
- `target_trajectory`: the path P(t) per target and year, computed once in
  the core by the targets service (boards read it instead of recomputing);
- `indicator_series` is dropped: progress recomputes every series from the
  facts, so no service writes another service's series;
- `target_version.payload_sha256` becomes the digest of the definition
  (`klimapuls.core.identity.target_digest`), so an identical re-declaration
  under another event id is a duplicate.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from klimapuls.core.identity import TARGET_DEFINITION, target_digest

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = ("name", "scope", "indicator", "unit")
_FIGURES: tuple[tuple[str, Any], ...] = (
    ("previous_stale", sa.Boolean()),
    ("target_year", sa.Integer()),
    ("target_value", sa.Double()),
    ("path_value", sa.Double()),
    ("forecast_value", sa.Double()),
    ("required_annual_reduction", sa.Double()),
)


def upgrade() -> None:
    for column in _TEXT:
        op.add_column(
            "target_status_change",
            sa.Column(column, sa.Text(), server_default="", nullable=False),
        )
    for column, kind in _FIGURES:
        op.add_column("target_status_change", sa.Column(column, kind))
    op.execute(
        "UPDATE target_status_change c SET name = v.name, scope = v.scope, "
        "indicator = v.indicator, unit = v.unit, target_year = v.target_year "
        "FROM target_version v "
        "WHERE v.target_id = c.target_id AND v.version = c.version"
    )
    op.create_table(
        "target_trajectory",
        sa.Column("target_id", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path_value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("target_id", "year", name="pk_target_trajectory"),
    )
    op.drop_table("indicator_series")
    conn = op.get_bind()
    columns = ", ".join(TARGET_DEFINITION)
    rows = conn.execute(sa.text(f"SELECT {columns} FROM target_version")).mappings()
    updates = [
        {"t": r["target_id"], "v": r["version"], "d": target_digest(dict(r))}
        for r in rows
    ]
    if updates:
        conn.execute(
            sa.text(
                "UPDATE target_version SET payload_sha256 = :d "
                "WHERE target_id = :t AND version = :v"
            ),
            updates,
        )


def downgrade() -> None:
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
            "indicator", "scope", "year", name="pk_indicator_series"
        ),
    )
    op.drop_table("target_trajectory")
    for column, _ in reversed(_FIGURES):
        op.drop_column("target_status_change", column)
    for column in reversed(_TEXT):
        op.drop_column("target_status_change", column)
