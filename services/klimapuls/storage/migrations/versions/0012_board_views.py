"""More `board` views: the questions of the overview, drill-down, fleet, mobility,
initiatives and operations boards (issue 11).

Like revision 0008, each view names what a board shows and carries that
question as its comment; panels read only these views. Nothing here computes
a domain rule: paths and forecasts are the core's (`target_trajectory`,
`target_progress`, written by the targets service), shares and coverage the
owning services'. "Synthetic" follows the simulator's labelling: demo events
say `synthetic` in `producer` (CO2 accounts and targets: `source`).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The producer named inside a dead letter's raw payload, when it is readable
# JSON; otherwise where the message came from (`origin` up to its first ':').
_DEAD_LETTER_PRODUCER = """
    coalesce(
        CASE WHEN d.payload_encoding = 'utf-8'
              AND left(ltrim(d.payload), 1) = '{'
              AND pg_input_is_valid(d.payload, 'json')
            THEN (d.payload::json ->> 'producer') END,
        split_part(d.origin, ':', 1)
    )
"""

# (name, what it answers, definition); the comment is stored on the view.
VIEWS: tuple[tuple[str, str, str], ...] = (
    (
        "municipalities",
        "Which municipalities can be chosen on the drill-down board (code, name).",
        "SELECT code, name FROM scope WHERE kind = 'municipality'",
    ),
    (
        "emissions_by_sector",
        "How much each sector emitted per scope and year, newest vintage; "
        "the region's rows sum its municipalities (complete: all 29 reported).",
        """
        WITH figures AS (
            SELECT municipality_code AS scope, year, sector,
                sum(tonnes_co2e)::double precision AS tonnes_co2e,
                1 AS reported
            FROM co2_account_current
            GROUP BY municipality_code, year, sector
        ), region AS (
            SELECT '1084' AS scope, year, sector, sum(tonnes_co2e) AS tonnes_co2e,
                count(DISTINCT scope)::integer AS reported
            FROM figures GROUP BY year, sector
        ), expected AS (
            SELECT count(*)::integer AS n FROM scope WHERE kind = 'municipality'
        )
        SELECT f.scope, f.year, make_date(f.year, 1, 1)::timestamptz AS time,
            f.sector, f.tonnes_co2e, f.reported, 1 AS expected, true AS complete
        FROM figures f
        UNION ALL
        SELECT r.scope, r.year, make_date(r.year, 1, 1)::timestamptz, r.sector,
            r.tonnes_co2e, r.reported, e.n, r.reported = e.n
        FROM region r CROSS JOIN expected e
        """,
    ),
    (
        "target_path",
        "The core's path P(t) of every target with a deadline, per year.",
        """
        SELECT t.target_id, p.version, p.scope, p.indicator, p.unit, t.year,
            make_date(t.year, 1, 1)::timestamptz AS time, t.path_value
        FROM target_trajectory t JOIN target_progress p USING (target_id)
        """,
    ),
    (
        "target_forecast",
        "Where each target's trend is heading: the newest counted value and "
        "the core's forecast at the target year, as two points of a line.",
        """
        SELECT target_id, scope, indicator, unit, latest_year AS year,
            make_date(latest_year, 1, 1)::timestamptz AS time,
            latest_value AS forecast_value
        FROM target_progress
        WHERE latest_year IS NOT NULL AND forecast_value IS NOT NULL
        UNION ALL
        SELECT target_id, scope, indicator, unit, target_year,
            make_date(target_year, 1, 1)::timestamptz, forecast_value
        FROM target_progress
        WHERE target_year IS NOT NULL AND forecast_value IS NOT NULL
        """,
    ),
    (
        "fleet_units_latest",
        "What the buses of each operator run on now, per municipality served: "
        "the newest snapshot of every contract or garage, summed (no "
        "municipality: not tied to one).",
        """
        SELECT operator, municipality_code, max(date) AS date,
            count(*)::integer AS units, sum(diesel)::integer AS diesel,
            sum(hybrid)::integer AS hybrid, sum(hvo)::integer AS hvo,
            sum(biogas)::integer AS biogas,
            sum(battery_electric)::integer AS battery_electric,
            sum(hydrogen)::integer AS hydrogen,
            sum(diesel + hybrid + hvo + biogas + battery_electric + hydrogen)
                ::integer AS total_buses,
            bool_or(producer ILIKE '%synthetic%') AS synthetic
        FROM (
            SELECT DISTINCT ON (c.operator, coalesce(c.contract, ''),
                coalesce(c.garage, ''))
                c.operator, c.municipality_code, c.date, c.diesel, c.hybrid,
                c.hvo, c.biogas, c.battery_electric, c.hydrogen, f.producer
            FROM fleet_status_current c JOIN fleet_status f USING (event_id)
            ORDER BY c.operator, coalesce(c.contract, ''),
                coalesce(c.garage, ''), c.date DESC
        ) newest
        GROUP BY operator, municipality_code
        """,
    ),
    (
        "initiative_status",
        "What each initiative reported in each round (the report that counts), "
        "with its programme and the tovholdere it named.",
        """
        SELECT c.round, to_date(c.round || '-01', 'YYYY-MM-DD') AS round_start,
            c.initiative_id, i.name, i.programme, i.group_name, c.status,
            c.tovholdere, c.effective_date, c.producer,
            c.producer ILIKE '%synthetic%' AS synthetic
        FROM initiative_status_current c JOIN initiative i USING (initiative_id)
        """,
    ),
    (
        "initiative_tovholdere",
        "Who leads each initiative now, with the tovholder's municipality.",
        """
        SELECT a.initiative_id, i.name, i.programme, a.tovholder, t.kind,
            t.municipality_code, a.valid_from, a.from_round
        FROM tovholder_assignment a
        JOIN initiative i USING (initiative_id)
        LEFT JOIN tovholder t ON t.name = a.tovholder
        WHERE a.valid_to IS NULL
        """,
    ),
    (
        "events_received",
        "Every stored event: when it arrived, its family, producer and whether "
        "it is synthetic demo data.",
        """
        SELECT received_at, 'co2_account' AS kind, producer, municipality_code,
            source ILIKE '%synthetic%' OR producer ILIKE '%synthetic%'
                AS synthetic
        FROM co2_account
        UNION ALL
        SELECT received_at, 'fleet_status', producer, municipality_code,
            producer ILIKE '%synthetic%'
        FROM fleet_status
        UNION ALL
        SELECT received_at, 'mobility_count', producer, municipality_code,
            producer ILIKE '%synthetic%'
        FROM mobility_count
        UNION ALL
        SELECT received_at, 'initiative_status', producer, NULL,
            producer ILIKE '%synthetic%'
        FROM initiative_status_report
        UNION ALL
        SELECT received_at, 'target', producer,
            CASE WHEN scope ~ '^[0-9]{3}$' THEN scope END,
            source ILIKE '%synthetic%' OR producer ILIKE '%synthetic%'
        FROM target_version
        """,
    ),
    (
        "data_origin",
        "Is what a board shows synthetic demo data? Events per family, and how "
        "many of them are synthetic.",
        """
        SELECT kind, count(*)::bigint AS events,
            count(*) FILTER (WHERE synthetic)::bigint AS synthetic_events,
            max(received_at) AS last_received
        FROM board.events_received GROUP BY kind
        """,
    ),
    (
        "dead_letters_by_producer",
        "Which producer sent each rejected event, and why it was rejected.",
        f"""
        SELECT d.dead_letter_id, d.rejected_at, d.received_at, d.kind, d.origin,
            {_DEAD_LETTER_PRODUCER} AS producer,
            d.field, left(d.reason, 120) AS reason, d.rejected_by
        FROM dead_letter d
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
        SELECT 'mobility_count', c.site_id, c.site_id, min(c.municipality_code),
            max(c.interval_end), max(c.received_at),
            bool_or(c.producer ILIKE '%synthetic%')
        FROM mobility_count c GROUP BY c.site_id
        UNION ALL
        SELECT 'fleet_status', f.operator, f.operator, NULL,
            max(f.date)::timestamptz, max(f.received_at),
            bool_or(f.producer ILIKE '%synthetic%')
        FROM fleet_status f GROUP BY f.operator
        """,
    ),
)


def upgrade() -> None:
    for name, comment, body in VIEWS:
        op.execute(f"CREATE VIEW board.{name} AS {body}")
        quoted = comment.replace("'", "''")
        op.execute(f"COMMENT ON VIEW board.{name} IS '{quoted}'")


def downgrade() -> None:
    for name, _comment, _body in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS board.{name}")
