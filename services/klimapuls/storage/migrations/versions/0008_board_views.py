"""The `board` schema: the documented views Grafana panels read.

Panels never read base tables: each view here names what a board shows, so
tables can change behind it, and a Grafana database user needs only
`USAGE` on this schema and `SELECT` on its views. The target path is not
computed here: `board.emission_vs_path` reads the points the targets
service wrote (`target_trajectory`, computed in the core).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, what it answers, definition); the comment is stored on the view.
VIEWS: tuple[tuple[str, str, str], ...] = (
    (
        "target_status",
        "Where every target stands now, worst first (status_rank 0 = off track).",
        """
        SELECT p.target_id, p.version, p.name, p.scope, s.name AS scope_name,
            p.indicator, p.unit, p.status, p.stale, p.baseline_year,
            p.baseline_value, p.target_year, p.target_value, p.latest_year,
            p.latest_value, p.reduction_achieved_pct, p.path_value,
            p.gap_to_path, p.forecast_value, p.required_annual_reduction,
            p.coverage_year, p.coverage_reported, p.coverage_expected,
            p.as_of, p.computed_at,
            CASE p.status WHEN 'off_track' THEN 0 WHEN 'at_risk' THEN 1
                WHEN 'no_data' THEN 2 WHEN 'on_track' THEN 3 ELSE 4 END
                AS status_rank
        FROM target_progress p LEFT JOIN scope s ON s.code = p.scope
        """,
    ),
    (
        "emission_vs_path",
        "Each emission target's measured E(t) (counted years) beside its path.",
        """
        WITH targets AS (
            SELECT target_id, scope,
                CASE WHEN scope = 'DK' THEN '1084' ELSE scope END AS measured
            FROM target_progress WHERE indicator = 'co2e_total'
        ), years AS (
            SELECT t.target_id, p.year FROM targets t
            JOIN target_trajectory p USING (target_id)
            UNION
            SELECT t.target_id, e.year FROM targets t
            JOIN emission_series e ON e.scope = t.measured
        )
        SELECT y.target_id, t.scope, y.year,
            make_date(y.year, 1, 1)::timestamptz AS time,
            CASE WHEN e.complete THEN e.tonnes_co2e END AS emissions,
            e.tonnes_co2e AS emissions_reported, e.complete,
            p.path_value
        FROM years y JOIN targets t USING (target_id)
        LEFT JOIN emission_series e ON e.scope = t.measured AND e.year = y.year
        LEFT JOIN target_trajectory p
            ON p.target_id = y.target_id AND p.year = y.year
        """,
    ),
    (
        "emission_coverage",
        "How many of the region's 29 municipalities reported each year.",
        """
        SELECT year, reported, expected, expected - reported AS missing, complete
        FROM emission_series WHERE scope = '1084'
        """,
    ),
    (
        "emissions_by_municipality",
        "E(t) of every municipality and year, with its name.",
        """
        SELECT e.scope AS municipality_code, s.name AS municipality, e.year,
            e.tonnes_co2e
        FROM emission_series e JOIN scope s ON s.code = e.scope
        WHERE s.kind = 'municipality'
        """,
    ),
    (
        "status_changes",
        "Every change of a target's status or staleness, with its figures.",
        """
        SELECT id, changed_at, target_id, version, name, scope, previous_status,
            status, previous_stale, stale, latest_year, latest_value,
            gap_to_path, forecast_value, published_at
        FROM target_status_change
        """,
    ),
    (
        "dead_letters",
        "Rejected events: when, which family, where from, which field, why.",
        """
        SELECT dead_letter_id, rejected_at, kind, origin, field, reason,
            rejected_by, event_id, payload_size, payload_truncated
        FROM dead_letter
        """,
    ),
    (
        "fleet_share",
        "Fossil-free and zero-emission bus shares per scope and date.",
        """
        SELECT scope, date, date::timestamptz AS time, total_buses,
            fossil_free_buses, zero_emission_buses, fossil_free_share,
            zero_emission_share, units
        FROM fleet_share
        """,
    ),
    (
        "fleet_latest",
        "Each operator's (and the region's) newest fleet figures.",
        """
        SELECT DISTINCT ON (scope) scope, date, total_buses, fossil_free_share,
            zero_emission_share, units
        FROM fleet_share ORDER BY scope, date DESC
        """,
    ),
    (
        "trips_hourly",
        "Current trips per hour, municipality, counting site and mode.",
        """
        SELECT bucket, municipality_code, site_id, mode, trips, counts
        FROM mobility_hourly
        """,
    ),
    (
        "congestion_daily",
        "Hours lost in traffic per local day and municipality.",
        """
        SELECT bucket, municipality_code, sum(delay_hours) AS delay_hours
        FROM mobility_daily WHERE delay_hours IS NOT NULL
        GROUP BY bucket, municipality_code
        """,
    ),
    (
        "modal_split",
        "Each mode's share of a scope's trips per year.",
        "SELECT scope, year, mode, trips, share_pct FROM mobility_modal_split",
    ),
    (
        "trips_year",
        "Sustainable share and bike trips per scope and year, with coverage.",
        """
        SELECT scope, year, total_trips, sustainable_trips, sustainable_share_pct,
            bike_trips, months_covered, counted, provisional
        FROM mobility_year
        """,
    ),
    (
        "missing_reports",
        "Initiatives that did not report in a round, and who should have.",
        """
        SELECT programme, round, initiative_id, name, tovholdere
        FROM initiative_missing_report
        """,
    ),
    (
        "without_tovholder",
        "Open initiatives with nobody in charge.",
        """
        SELECT initiative_id, name, programme, group_name, estimate_dkk_m, note
        FROM initiative_without_tovholder
        """,
    ),
    (
        "handovers",
        "Tovholder hand-overs with their dates.",
        """
        SELECT initiative_id, round, effective_date, previous, new
        FROM tovholder_handover
        """,
    ),
)


def upgrade() -> None:
    op.execute("CREATE SCHEMA board")
    op.execute(
        "COMMENT ON SCHEMA board IS 'Views the Grafana boards read (no base tables)'"
    )
    for name, comment, body in VIEWS:
        op.execute(f"CREATE VIEW board.{name} AS {body}")
        quoted = comment.replace("'", "''")
        op.execute(f"COMMENT ON VIEW board.{name} IS '{quoted}'")


def downgrade() -> None:
    op.execute("DROP SCHEMA board CASCADE")
