"""Queries under 100 ms at production size (issue 12): summaries of the counts.

`bench/queries.py` times target progress and every board query on 30 years
of accounts and a year of 15-minute counts from 500 sites (17.5 M rows).
Where a query read every raw count, it now reads a small table the mobility
service keeps as it stores and rolls up the counts (owner: mobility):

- `mobility_site_monthly`: current trips per counting site, mode and local
  month (progress summed every bike hour, ~0.7 M rows, for its site-years);
  `mobility_mode_hourly` and `mobility_region_hourly`: trips per hour and
  mode, per municipality and for the region (read by the new views
  `board.trips_hourly_by_mode` and `board.trips_hourly_region`, which the
  trips panels read instead of every site's hours). All three are kept by
  the rollup refresh from the deltas of the hour rows it rewrites, and only
  with our own rollups: with TimescaleDB the readers sum the hours.
- `mobility_feed`: per counting site, the events stored (synthetic ones
  too), the newest period and the newest arrival; read by
  `board.feed_freshness` and `board.data_origin`, which grouped all counts.
- `mobility_receipt`: events stored per minute of arrival (synthetic or
  not); read by the new `board.events_received_minutely`, which the
  operations board's events panel reads instead of every stored event
  (Grafana's steps are whole minutes, so the bins are the same).

Revision ID: 0013
Revises: 0012
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SYNTHETIC = "producer ILIKE '%synthetic%'"

_SITE_MONTHLY = """
CREATE TABLE mobility_site_monthly (
    bucket timestamptz NOT NULL,
    site_id text NOT NULL,
    municipality_code text NOT NULL,
    mode text NOT NULL,
    trips bigint NOT NULL,
    counts bigint NOT NULL,
    -- Hour rows summed: the month is deleted when the last one goes.
    hours bigint NOT NULL,
    CONSTRAINT pk_mobility_site_monthly
        PRIMARY KEY (site_id, mode, municipality_code, bucket)
);
CREATE INDEX ix_mobility_site_monthly_mode ON mobility_site_monthly (mode);
INSERT INTO mobility_site_monthly
    (bucket, site_id, municipality_code, mode, trips, counts, hours)
SELECT date_trunc('month', bucket, 'Europe/Copenhagen'), site_id,
    municipality_code, mode, sum(trips), sum(counts), count(*)
FROM mobility_hourly GROUP BY 1, site_id, municipality_code, mode;
"""

# Trips per hour and mode, per municipality and for the whole region: the
# trips panels summed every site's hours (0.36 M rows for 30 days).
_MODE_HOURLY = """
CREATE TABLE mobility_mode_hourly (
    bucket timestamptz NOT NULL,
    municipality_code text NOT NULL,
    mode text NOT NULL,
    trips bigint NOT NULL,
    counts bigint NOT NULL,
    hours bigint NOT NULL,
    CONSTRAINT pk_mobility_mode_hourly
        PRIMARY KEY (bucket, municipality_code, mode)
);
CREATE INDEX ix_mobility_mode_hourly_municipality_code_bucket
    ON mobility_mode_hourly (municipality_code, bucket);
INSERT INTO mobility_mode_hourly
    (bucket, municipality_code, mode, trips, counts, hours)
SELECT bucket, municipality_code, mode, sum(trips), sum(counts), count(*)
FROM mobility_hourly GROUP BY bucket, municipality_code, mode;
CREATE TABLE mobility_region_hourly (
    bucket timestamptz NOT NULL,
    mode text NOT NULL,
    trips bigint NOT NULL,
    counts bigint NOT NULL,
    hours bigint NOT NULL,
    CONSTRAINT pk_mobility_region_hourly PRIMARY KEY (bucket, mode)
);
INSERT INTO mobility_region_hourly (bucket, mode, trips, counts, hours)
SELECT bucket, mode, sum(trips), sum(counts), count(*)
FROM mobility_hourly GROUP BY bucket, mode;
"""

_FEEDS = f"""
CREATE TABLE mobility_feed (
    site_id text NOT NULL,
    municipality_code text NOT NULL,
    events bigint NOT NULL,
    synthetic_events bigint NOT NULL,
    last_period timestamptz NOT NULL,
    last_received timestamptz NOT NULL,
    CONSTRAINT pk_mobility_feed PRIMARY KEY (site_id)
);
INSERT INTO mobility_feed (site_id, municipality_code, events,
    synthetic_events, last_period, last_received)
SELECT site_id, min(municipality_code), count(*),
    count(*) FILTER (WHERE {_SYNTHETIC}), max(interval_end), max(received_at)
FROM mobility_count GROUP BY site_id;
CREATE TABLE mobility_receipt (
    minute timestamptz NOT NULL,
    synthetic boolean NOT NULL,
    events bigint NOT NULL,
    last_received timestamptz NOT NULL,
    CONSTRAINT pk_mobility_receipt PRIMARY KEY (minute, synthetic)
);
INSERT INTO mobility_receipt (minute, synthetic, events, last_received)
SELECT date_trunc('minute', received_at), {_SYNTHETIC}, count(*),
    max(received_at)
FROM mobility_count GROUP BY 1, 2;
"""

# (name, what it answers, definition); same columns as in 0012.
VIEWS: tuple[tuple[str, str, str], ...] = (
    (
        "data_origin",
        "Is what a board shows synthetic demo data? Events per family, and how "
        "many of them are synthetic.",
        """
        SELECT kind, count(*)::bigint AS events,
            count(*) FILTER (WHERE synthetic)::bigint AS synthetic_events,
            max(received_at) AS last_received
        FROM board.events_received WHERE kind <> 'mobility_count' GROUP BY kind
        UNION ALL
        SELECT 'mobility_count', sum(events)::bigint, sum(synthetic_events)::bigint,
            max(last_received)
        FROM mobility_feed HAVING count(*) > 0
        """,
    ),
    (
        "feed_freshness",
        "When each feed last delivered: a municipality's CO2 account, a "
        "counting site, an operator's fleet report (newest period and arrival).",
        """
        SELECT 'co2_account' AS feed, a.municipality_code AS feed_key,
            s.name AS feed_name, a.municipality_code,
            make_date(max(a.year), 12, 31)::timestamptz AS last_period,
            max(a.received_at) AS last_received,
            bool_or(a.source ILIKE '%synthetic%') AS synthetic
        FROM co2_account a LEFT JOIN scope s ON s.code = a.municipality_code
        GROUP BY a.municipality_code, s.name
        UNION ALL
        SELECT 'mobility_count', f.site_id, f.site_id, f.municipality_code,
            f.last_period, f.last_received, f.synthetic_events > 0
        FROM mobility_feed f
        UNION ALL
        SELECT 'fleet_status', f.operator, f.operator, NULL,
            max(f.date)::timestamptz, max(f.received_at),
            bool_or(f.producer ILIKE '%synthetic%')
        FROM fleet_status f GROUP BY f.operator
        """,
    ),
)

_MINUTELY = (
    "events_received_minutely",
    "How many events of each family arrived in each minute, and whether they "
    "are synthetic demo data.",
    """
    SELECT date_trunc('minute', received_at) AS received_minute, kind, synthetic,
        count(*)::bigint AS events
    FROM board.events_received WHERE kind <> 'mobility_count'
    GROUP BY 1, kind, synthetic
    UNION ALL
    SELECT minute, 'mobility_count', synthetic, events FROM mobility_receipt
    """,
)


def _trips_views(own: bool) -> tuple[tuple[str, str, str], ...]:
    # With TimescaleDB (no such tables) the views sum the hours instead.
    by_municipality = (
        "SELECT bucket, municipality_code, mode, trips, counts "
        "FROM mobility_mode_hourly"
        if own
        else "SELECT bucket, municipality_code, mode, sum(trips)::bigint AS trips, "
        "sum(counts)::bigint AS counts FROM mobility_hourly "
        "GROUP BY bucket, municipality_code, mode"
    )
    region = (
        "SELECT bucket, mode, trips, counts FROM mobility_region_hourly"
        if own
        else "SELECT bucket, mode, sum(trips)::bigint AS trips, "
        "sum(counts)::bigint AS counts FROM mobility_hourly GROUP BY bucket, mode"
    )
    return (
        (
            "trips_hourly_by_mode",
            "Current trips per hour, municipality and mode (all its sites).",
            by_municipality,
        ),
        (
            "trips_hourly_region",
            "Current trips per hour and mode in the whole region.",
            region,
        ),
    )


def _own_rollups() -> bool:
    kind = op.get_bind().execute(
        sa.text(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass('mobility_hourly')"
        )
    )
    return kind.scalar() == "r"


def _comment(name: str, comment: str) -> None:
    quoted = comment.replace("'", "''")
    op.execute(f"COMMENT ON VIEW board.{name} IS '{quoted}'")


def upgrade() -> None:
    own = _own_rollups()
    if own:
        op.execute(_SITE_MONTHLY)
        op.execute(_MODE_HOURLY)
    op.execute(_FEEDS)
    for name, comment, body in (*VIEWS, _MINUTELY, *_trips_views(own)):
        op.execute(f"CREATE OR REPLACE VIEW board.{name} AS {body}")
        _comment(name, comment)


def _views_of_0012() -> dict[str, str]:
    path = Path(__file__).with_name("0012_board_views.py")
    spec = importlib.util.spec_from_file_location("klimapuls_0012", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: body for name, _comment, body in module.VIEWS}


def downgrade() -> None:
    for name, _comment, _body in (_MINUTELY, *_trips_views(True)):
        op.execute(f"DROP VIEW IF EXISTS board.{name}")
    before = _views_of_0012()
    for name, _comment, _body in VIEWS:
        op.execute(f"CREATE OR REPLACE VIEW board.{name} AS {before[name]}")
    op.execute("DROP TABLE IF EXISTS mobility_receipt, mobility_feed")
    op.execute(
        "DROP TABLE IF EXISTS mobility_site_monthly, mobility_mode_hourly, "
        "mobility_region_hourly"
    )
