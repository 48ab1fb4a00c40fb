"""Mobility counts: partitioned raw counts and rollups.

Raw counts go to `mobility_count`, every restatement kept; `is_current` marks
the count that counts for its count key (see `klimapuls.core.mobility`), and a
partial unique index keeps it to one per key. Rollups by hour, day and year
(`mobility_hourly`, `mobility_daily`, `mobility_yearly`) sum the current
counts, with the same columns on both branches so readers stay portable:

- With TimescaleDB: `mobility_count` is a hypertable (monthly chunks) and the
  rollups are hierarchical continuous aggregates. NOT run in this repository's
  tests: TimescaleDB is in no registry reachable here.
- Without it: `mobility_count` is `PARTITION BY RANGE (interval_start)` with
  monthly partitions created on demand by the repository, a BRIN index on
  time, and the rollups are tables kept by an incremental refresh with a
  watermark on `seq` (`klimapuls.storage.mobility_repository`).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = """
    event_id text NOT NULL,
    seq bigint NOT NULL DEFAULT nextval('mobility_count_seq'),
    site_id text NOT NULL,
    site_kind text,
    municipality_code text NOT NULL,
    mode text NOT NULL,
    direction text NOT NULL,
    interval_start timestamptz NOT NULL,
    interval_end timestamptz NOT NULL,
    count bigint NOT NULL,
    delay_hours double precision,
    revision integer NOT NULL,
    is_current boolean NOT NULL,
    producer text NOT NULL,
    reported_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    payload_sha256 text NOT NULL,
    -- A partitioned table's keys must hold the partition column.
    CONSTRAINT pk_mobility_count PRIMARY KEY (event_id, interval_start)
"""

# Leads with interval_start, so it also serves the hour scans of the rollups.
_CURRENT_INDEX = """
CREATE UNIQUE INDEX uq_mobility_count_current ON mobility_count
    (interval_start, site_id, mode, direction, interval_end) WHERE is_current
"""

_PORTABLE_ROLLUPS = """
CREATE TABLE mobility_hourly (
    bucket timestamptz NOT NULL,
    municipality_code text NOT NULL,
    site_id text NOT NULL,
    mode text NOT NULL,
    trips bigint NOT NULL,
    delay_hours double precision,
    counts bigint NOT NULL,
    CONSTRAINT pk_mobility_hourly
        PRIMARY KEY (bucket, site_id, mode, municipality_code)
);
-- Days are re-added per (municipality, mode) from their hours.
CREATE INDEX ix_mobility_hourly_municipality_code_mode_bucket
    ON mobility_hourly (municipality_code, mode, bucket);
CREATE TABLE mobility_daily (
    bucket timestamptz NOT NULL,
    municipality_code text NOT NULL,
    mode text NOT NULL,
    trips bigint NOT NULL,
    delay_hours double precision,
    counts bigint NOT NULL,
    month_mask integer NOT NULL,
    CONSTRAINT pk_mobility_daily PRIMARY KEY (municipality_code, mode, bucket)
);
CREATE TABLE mobility_yearly (
    bucket timestamptz NOT NULL,
    municipality_code text NOT NULL,
    mode text NOT NULL,
    trips bigint NOT NULL,
    delay_hours double precision,
    counts bigint NOT NULL,
    month_mask integer NOT NULL,
    CONSTRAINT pk_mobility_yearly PRIMARY KEY (municipality_code, mode, bucket)
);
CREATE TABLE mobility_rollup_state (
    name text NOT NULL,
    watermark bigint NOT NULL,
    refreshed_at timestamptz,
    CONSTRAINT pk_mobility_rollup_state PRIMARY KEY (name)
);
INSERT INTO mobility_rollup_state (name, watermark) VALUES ('rollups', 0);
"""

# Hierarchical continuous aggregates (TimescaleDB >= 2.9); real-time, so rows
# newer than the last refresh are read from the level below.
_TIMESCALE_ROLLUPS = (
    """
SELECT create_hypertable('mobility_count', 'interval_start',
    chunk_time_interval => INTERVAL '1 month')
""",
    """
CREATE MATERIALIZED VIEW mobility_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', interval_start) AS bucket,
    municipality_code, site_id, mode,
    sum(count)::bigint AS trips, sum(delay_hours) AS delay_hours,
    count(*) AS counts
FROM mobility_count
WHERE is_current
GROUP BY 1, municipality_code, site_id, mode
WITH NO DATA
""",
    """
CREATE MATERIALIZED VIEW mobility_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket, 'Europe/Copenhagen') AS bucket,
    municipality_code, mode,
    sum(trips)::bigint AS trips, sum(delay_hours) AS delay_hours,
    sum(counts)::bigint AS counts,
    bit_or(1 << (extract(month FROM bucket AT TIME ZONE 'Europe/Copenhagen')::int
        - 1)) AS month_mask
FROM mobility_hourly
GROUP BY 1, municipality_code, mode
WITH NO DATA
""",
    """
CREATE MATERIALIZED VIEW mobility_yearly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 year', bucket, 'Europe/Copenhagen') AS bucket,
    municipality_code, mode,
    sum(trips)::bigint AS trips, sum(delay_hours) AS delay_hours,
    sum(counts)::bigint AS counts, bit_or(month_mask) AS month_mask
FROM mobility_daily
GROUP BY 1, municipality_code, mode
WITH NO DATA
""",
    # Restatements of old counts reach the materialised buckets on refresh.
    """
SELECT add_continuous_aggregate_policy('mobility_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 minute')
""",
    """
SELECT add_continuous_aggregate_policy('mobility_daily',
    start_offset => NULL, end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '5 minutes')
""",
    """
SELECT add_continuous_aggregate_policy('mobility_yearly',
    start_offset => NULL, end_offset => NULL,
    schedule_interval => INTERVAL '15 minutes')
""",
)


def _has_timescaledb() -> bool:
    found = op.get_bind().execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    )
    return found.first() is not None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE mobility_count_seq")
    if _has_timescaledb():
        op.execute(f"CREATE TABLE mobility_count ({_COLUMNS})")
        op.execute(_CURRENT_INDEX)
        op.execute("CREATE INDEX ix_mobility_count_seq ON mobility_count (seq)")
        for statement in _TIMESCALE_ROLLUPS:
            op.execute(statement)
    else:
        op.execute(
            f"CREATE TABLE mobility_count ({_COLUMNS}) "
            "PARTITION BY RANGE (interval_start)"
        )
        op.execute(_CURRENT_INDEX)
        op.execute("CREATE INDEX ix_mobility_count_seq ON mobility_count (seq)")
        op.execute(
            "CREATE INDEX ix_mobility_count_interval_start ON mobility_count "
            "USING brin (interval_start)"
        )
        op.execute(_PORTABLE_ROLLUPS)
    op.execute("ALTER SEQUENCE mobility_count_seq OWNED BY mobility_count.seq")
    op.create_table(
        "mobility_modal_split",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("trips", sa.BigInteger(), nullable=False),
        sa.Column("share_pct", sa.Double(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint(
            "scope", "year", "mode", name=op.f("pk_mobility_modal_split")
        ),
    )
    op.create_table(
        "mobility_year",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("total_trips", sa.BigInteger(), nullable=False),
        sa.Column("sustainable_trips", sa.BigInteger(), nullable=False),
        sa.Column("sustainable_share_pct", sa.Double(), nullable=True),
        sa.Column("bike_trips", sa.BigInteger(), nullable=False),
        sa.Column("months_covered", sa.Integer(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scope", "year", name=op.f("pk_mobility_year")),
    )


def downgrade() -> None:
    op.drop_table("mobility_year")
    op.drop_table("mobility_modal_split")
    if _has_timescaledb():
        for view in ("mobility_yearly", "mobility_daily", "mobility_hourly"):
            op.execute(f"DROP MATERIALIZED VIEW IF EXISTS {view} CASCADE")
    else:
        for table in (
            "mobility_rollup_state",
            "mobility_yearly",
            "mobility_daily",
            "mobility_hourly",
        ):
            op.drop_table(table)
    # Drops the partitions and the owned sequence with it.
    op.execute("DROP TABLE mobility_count CASCADE")
