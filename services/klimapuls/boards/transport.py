"""The transport boards: bus fleet electrification and mobility."""

from __future__ import annotations

from klimapuls.boards.panels import Board, BoardBuilder, Sql

__all__ = ["MODES", "fleet", "mobility"]

#: Counted modes with their Danish labels.
MODES: tuple[tuple[str, str], ...] = (
    ("car", "Bil"),
    ("bike", "Cykel"),
    ("walk", "Gang"),
    ("bus", "Bus"),
    ("train", "Tog"),
    ("metro", "Metro"),
)


def fleet() -> Board:
    """How far the buses are from fossil-free and zero-emission operation."""
    board = BoardBuilder(
        "klimapuls-fleet",
        "Klimapuls — busflådens omstilling",
        "Fossilfri og nulemissions andel af busserne mod 2030, pr. operatør. "
        "HVO og biogas er fossilfri, men ikke nulemission; el og brint er begge.",
        ["busser", "flåde"],
    )
    board.origin(["fleet_status"])
    board.table(
        "Flådemål",
        "Er Movias fossilfri 2030 og regionens nulemissionsbusser på kurs?",
        [
            Sql(
                """
SELECT target_id AS "Mål", name AS "Navn", status AS "Status",
       latest_year AS "Seneste år", round(latest_value::numeric, 1) AS "Andel %",
       round(path_value::numeric, 1) AS "Sti %", target_year AS "Målår"
FROM board.target_status
WHERE indicator IN ('fossil_free_bus_share', 'zero_emission_bus_share')
ORDER BY status_rank, target_id""",
                columns=(
                    "Mål",
                    "Navn",
                    "Status",
                    "Seneste år",
                    "Andel %",
                    "Sti %",
                    "Målår",
                ),
            )
        ],
        width=18,
        height=4,
        status_column="Status",
        units={"Andel %": "percent", "Sti %": "percent"},
    )
    board.timeseries(
        "Movia: fossilfri og nulemission mod 2030",
        "Når Movia fossilfri busdrift i 2030? Andele pr. snapshotdato mod "
        "kernens sti for movia-fossil-free-2030.",
        [
            Sql(
                """
SELECT time, fossil_free_share AS "Fossilfri andel",
       zero_emission_share AS "Nulemission andel"
FROM board.fleet_share
WHERE scope = 'movia' AND $__timeFilter(time)
ORDER BY time""",
                columns=("time", "Fossilfri andel", "Nulemission andel"),
                fmt="time_series",
            ),
            Sql(
                """
SELECT time, path_value AS "Målsti fossilfri 2030"
FROM board.target_path
WHERE target_id = 'movia-fossil-free-2030' AND $__timeFilter(time)
ORDER BY time""",
                columns=("time", "Målsti fossilfri 2030"),
                fmt="time_series",
                ref_id="B",
            ),
        ],
        unit="percent",
        axis_label="% af busserne",
        width=24,
    )
    board.timeseries(
        "Fossilfri andel pr. operatør",
        "Hvilke operatører (og regionen) halter efter med fossilfri drift?",
        [
            Sql(
                """
SELECT time, scope AS "Operatør", fossil_free_share AS "Fossilfri andel"
FROM board.fleet_share WHERE $__timeFilter(time) ORDER BY time""",
                columns=("time", "Operatør", "Fossilfri andel"),
                fmt="time_series",
            )
        ],
        unit="percent",
        axis_label="% fossilfri",
    )
    board.timeseries(
        "Nulemission andel pr. operatør",
        "Hvor mange busser kører på el eller brint hos hver operatør?",
        [
            Sql(
                """
SELECT time, scope AS "Operatør", zero_emission_share AS "Nulemission andel"
FROM board.fleet_share WHERE $__timeFilter(time) ORDER BY time""",
                columns=("time", "Operatør", "Nulemission andel"),
                fmt="time_series",
            )
        ],
        unit="percent",
        axis_label="% nulemission",
    )
    board.barchart(
        "Busser pr. drivmiddel og operatør (nu)",
        "Hvad kører hver operatørs busser på i dag?",
        [
            Sql(
                """
SELECT operator AS "Operatør", sum(diesel) AS "Diesel", sum(hybrid) AS "Hybrid",
       sum(hvo) AS "HVO", sum(biogas) AS "Biogas",
       sum(battery_electric) AS "El", sum(hydrogen) AS "Brint"
FROM board.fleet_units_latest GROUP BY operator ORDER BY operator""",
                columns=(
                    "Operatør",
                    "Diesel",
                    "Hybrid",
                    "HVO",
                    "Biogas",
                    "El",
                    "Brint",
                ),
            )
        ],
        unit="short",
        axis_label="busser",
        x_field="Operatør",
        stacked=True,
    )
    board.table(
        "Seneste flådetal pr. operatør",
        "Hvor mange busser har hver operatør, og hvor store er andelene nu?",
        [
            Sql(
                """
SELECT scope AS "Operatør", date AS "Dato", total_buses AS "Busser",
       round(fossil_free_share::numeric, 1) AS "Fossilfri %",
       round(zero_emission_share::numeric, 1) AS "Nulemission %",
       units AS "Kontrakter/garager"
FROM board.fleet_latest ORDER BY scope""",
                columns=(
                    "Operatør",
                    "Dato",
                    "Busser",
                    "Fossilfri %",
                    "Nulemission %",
                    "Kontrakter/garager",
                ),
            )
        ],
        units={"Fossilfri %": "percent", "Nulemission %": "percent"},
    )
    return board.build()


def _yearly_vs_path(value: str, label: str, target_id: str, path_label: str) -> Sql:
    """A yearly series (final and provisional years apart) beside a path."""
    return _series_vs_path(
        f"""SELECT year, {value} AS value, provisional
    FROM board.trips_year WHERE scope = '1084'""",
        label,
        target_id,
        path_label,
    )


def _target_vs_path(target_id: str, label: str, path_label: str) -> Sql:
    """A target's measured series (as the core judges it) beside its path."""
    return _series_vs_path(
        f"""SELECT year, value, provisional
    FROM board.target_series WHERE target_id = '{target_id}'""",
        label,
        target_id,
        path_label,
    )


def _series_vs_path(series: str, label: str, target_id: str, path_label: str) -> Sql:
    """`series` (year, value, provisional) beside a target's path.

    Final and provisional years apart.
    """
    return Sql(
        f"""
WITH series AS (
    {series}
), path AS (
    SELECT year, path_value FROM board.target_path WHERE target_id = '{target_id}'
)
SELECT make_date(year, 1, 1)::timestamptz AS time,
       CASE WHEN NOT s.provisional THEN s.value END AS "{label}",
       CASE WHEN s.provisional THEN s.value END AS "{label} (foreløbig)",
       p.path_value AS "{path_label}"
FROM series s FULL JOIN path p USING (year)
ORDER BY time""",
        columns=("time", label, f"{label} (foreløbig)", path_label),
        fmt="time_series",
    )


def mobility() -> Board:
    """How the region travels: modal split, bike trips, congestion."""
    board = BoardBuilder(
        "klimapuls-mobility",
        "Klimapuls — mobilitet",
        "Transportformernes fordeling mod 2/3 bæredygtige ture i 2035, "
        "cykelture mod +20 % i 2030, kø-timer. Foreløbige år er mærket.",
        ["mobilitet"],
        # Yearly figures back to the baselines and the paths to 2030 and 2035;
        # the hourly and daily charts show whatever of it has counts.
        time_from="now-10y",
        time_to="now+10y",
    )
    board.origin(["mobility_count"])
    board.timeseries(
        "Ture pr. transportform (hele regionen)",
        "Hvor mange ture tælles, og med hvilken transportform?",
        [
            Sql(
                """
SELECT $__timeGroupAlias(bucket, $__interval), mode AS "Transportform",
       sum(trips) AS "Ture"
FROM board.trips_hourly_region
WHERE $__timeFilter(bucket)
GROUP BY 1, 2 ORDER BY 1""",
                columns=("time", "Transportform", "Ture"),
                fmt="time_series",
            )
        ],
        unit="short",
        axis_label="ture pr. interval",
        width=18,
        stacked=True,
    )
    board.barchart(
        "Transportformernes andel pr. år (regionen)",
        "Hvordan fordeler turene sig på bil, cykel, gang og kollektiv trafik? "
        "Foreløbige år er mærket.",
        [
            Sql(
                """
SELECT m.year::text || CASE WHEN y.provisional THEN ' (foreløbig)' ELSE '' END
           AS "År",
"""
                + ",\n".join(
                    f"       max(m.share_pct) FILTER (WHERE m.mode = '{key}')"
                    f' AS "{label}"'
                    for key, label in MODES
                )
                + """
FROM board.modal_split m
JOIN board.trips_year y ON y.scope = m.scope AND y.year = m.year
WHERE m.scope = '1084'
GROUP BY m.year, y.provisional ORDER BY m.year""",
                columns=("År", *(label for _, label in MODES)),
            )
        ],
        unit="percent",
        axis_label="% af turene",
        x_field="År",
        width=24,
        stacked=True,
    )
    board.timeseries(
        "Bæredygtige ture mod 2/3 i 2035",
        "Når regionen 2/3 af turene med kollektiv trafik, cykel eller gang?",
        [
            _yearly_vs_path(
                "sustainable_share_pct",
                "Bæredygtig andel",
                "sustainable-trips-2035",
                "Målsti 2/3 i 2035",
            )
        ],
        unit="percent",
        axis_label="% af turene",
    )
    board.timeseries(
        "Cykelture pr. år mod +20 % i 2030",
        "Stiger cykelturene med 20 % til 2030? Sammenlignet på lige fod: "
        "væksten måles på de tællesteder, der talte cykler hele året i begge "
        "år, så et nyt tællested ikke får kurven til at springe. (Stien "
        "vises, når målet har et basisår med data.)",
        [_target_vs_path("bike-trips-2030", "Cykelture", "Målsti +20 % 2030")],
        unit="short",
        axis_label="cykelture pr. år",
        bars=True,
    )
    board.timeseries(
        "Timer tabt i kø pr. dag",
        "Hvor meget forsinkelse (kø-timer) måles pr. dag i hver kommune?",
        [
            Sql(
                """
SELECT bucket AS time, municipality_code AS "Kommune",
       delay_hours AS "Kø-timer"
FROM board.congestion_daily WHERE $__timeFilter(bucket) ORDER BY bucket""",
                columns=("time", "Kommune", "Kø-timer"),
                fmt="time_series",
            )
        ],
        unit="h",
        axis_label="timer",
        width=24,
    )
    board.table(
        "Ture pr. år og område",
        "Hvor langt er hver kommune med bæredygtige ture, og hvor mange "
        "måneder er talt? Foreløbige år er mærket.",
        [
            Sql(
                """
SELECT scope AS "Område", year AS "År", total_trips AS "Ture",
       round(sustainable_share_pct::numeric, 1) AS "Bæredygtig %",
       bike_trips AS "Cykelture", months_covered AS "Måneder talt",
       CASE WHEN provisional THEN 'foreløbig' ELSE 'endelig' END AS "Status"
FROM board.trips_year ORDER BY year DESC, scope""",
                columns=(
                    "Område",
                    "År",
                    "Ture",
                    "Bæredygtig %",
                    "Cykelture",
                    "Måneder talt",
                    "Status",
                ),
            )
        ],
        width=24,
        units={"Bæredygtig %": "percent"},
    )
    return board.build()
