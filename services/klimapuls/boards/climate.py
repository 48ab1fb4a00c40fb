"""The climate boards: the regional overview and the municipality drill-down."""

from __future__ import annotations

from klimapuls.boards.panels import Board, BoardBuilder, Sql

__all__ = ["SECTORS", "municipality", "overview"]

#: The account sectors with their Danish labels, in stacking order.
SECTORS: tuple[tuple[str, str], ...] = (
    ("energy", "Energi"),
    ("transport", "Transport"),
    ("agriculture", "Landbrug"),
    ("industry", "Industri"),
    ("waste", "Affald"),
    ("other", "Andet"),
)

_SECTOR_COLUMNS = ",\n       ".join(
    f"sum(tonnes_co2e) FILTER (WHERE sector = '{key}') AS \"{label}\""
    for key, label in SECTORS
)
_STATUS_TABLE = """
SELECT target_id AS "Mål", name AS "Navn", scope_name AS "Område",
       version AS "Version", status AS "Status", stale AS "Forældet",
       latest_year AS "Seneste år", round(latest_value::numeric) AS "Seneste værdi",
       unit AS "Enhed", round(reduction_achieved_pct::numeric, 1) AS "Opnået %",
       round(gap_to_path::numeric) AS "Afstand til sti",
       round(forecast_value::numeric) AS "Prognose i målår", target_year AS "Målår"
FROM board.target_status
"""
_STATUS_COLUMNS = (
    "Mål",
    "Navn",
    "Område",
    "Version",
    "Status",
    "Forældet",
    "Seneste år",
    "Seneste værdi",
    "Enhed",
    "Opnået %",
    "Afstand til sti",
    "Prognose i målår",
    "Målår",
)


def _path(target_id: str, label: str, ref_id: str) -> Sql:
    return Sql(
        f"""
SELECT time, path_value AS "{label}"
FROM board.target_path
WHERE target_id = '{target_id}' AND $__timeFilter(time)
ORDER BY time""",
        columns=("time", label),
        fmt="time_series",
        ref_id=ref_id,
    )


def overview() -> Board:
    """Where the region stands: emissions against its paths, sectors, coverage."""
    board = BoardBuilder(
        "klimapuls-co2",
        "Klimapuls — regionalt overblik",
        "Region Hovedstadens CO2e-udledning mod -85 % i 2030 og netto-nul i "
        "2045, sektorer, dækning og status for alle mål (ude af kurs først).",
        ["co2", "overblik"],
    )
    board.origin(["co2_account", "target"])
    board.stat(
        "Mål efter status",
        "Hvor mange mål er ude af kurs, i risiko eller på kurs/nået lige nu?",
        [
            Sql(
                """
SELECT count(*) FILTER (WHERE status = 'off_track') AS "Ude af kurs",
       count(*) FILTER (WHERE status = 'at_risk') AS "I risiko",
       count(*) FILTER (WHERE status IN ('on_track', 'achieved')) AS "På kurs/nået",
       count(*) FILTER (WHERE status = 'no_data') AS "Ingen data"
FROM board.target_status""",
                columns=("Ude af kurs", "I risiko", "På kurs/nået", "Ingen data"),
            )
        ],
        unit="none",
        width=12,
    )
    board.stat(
        "Opnået reduktion siden 1990",
        "Hvor langt er regionen nået mod -85 %: reduktion i seneste komplette år.",
        [
            Sql(
                """
SELECT reduction_achieved_pct AS "Opnået reduktion", latest_year AS "År"
FROM board.target_status WHERE target_id = 'region-co2-2030'""",
                columns=("Opnået reduktion", "År"),
            )
        ],
        unit="percent",
    )
    board.timeseries(
        "Regionens udledning mod -85 % i 2030 og netto-nul i 2045",
        "Er regionen på stien? E(t) tæller kun år, hvor alle 29 kommuner har "
        "indberettet; stierne er kernens (target_trajectory), og klimalovens "
        "-70 % er en national referencelinje mod regionens serie.",
        [
            Sql(
                """
SELECT time, emissions AS "Udledning (alle 29 kommuner)"
FROM board.emission_vs_path
WHERE target_id = 'region-co2-2030' AND emissions IS NOT NULL
  AND $__timeFilter(time)
ORDER BY time""",
                columns=("time", "Udledning (alle 29 kommuner)"),
                fmt="time_series",
            ),
            _path("region-co2-2030", "Målsti -85 % 2030", "B"),
            _path("region-neutral-2045", "Målsti netto-nul 2045", "C"),
            _path("dk-climate-law-2030", "Klimaloven -70 % (national reference)", "D"),
            Sql(
                """
SELECT time, forecast_value AS "Prognose (trend)"
FROM board.target_forecast
WHERE target_id = 'region-co2-2030' AND $__timeFilter(time)
ORDER BY time""",
                columns=("time", "Prognose (trend)"),
                fmt="time_series",
                ref_id="E",
            ),
        ],
        unit="masst",
        axis_label="t CO2e",
        width=24,
        height=10,
    )
    board.barchart(
        "Udledning pr. sektor (regionen, komplette år)",
        "Hvilke sektorer udleder mest, og hvordan ændrer fordelingen sig?",
        [
            Sql(
                f"""
SELECT year::text AS "År",
       {_SECTOR_COLUMNS}
FROM board.emissions_by_sector
WHERE scope = '1084' AND complete
GROUP BY year ORDER BY year""",
                columns=("År", *(label for _, label in SECTORS)),
            )
        ],
        unit="masst",
        axis_label="t CO2e",
        x_field="År",
        width=16,
        stacked=True,
    )
    board.barchart(
        "Indberetninger pr. år (af 29 kommuner)",
        "Dækning: hvor mange kommuner har indberettet CO2-regnskab for året?",
        [
            Sql(
                """
SELECT year::text AS "År", reported AS "Indberettet", missing AS "Mangler"
FROM board.emission_coverage ORDER BY year DESC LIMIT 12""",
                columns=("År", "Indberettet", "Mangler"),
            )
        ],
        unit="none",
        axis_label="kommuner",
        x_field="År",
        width=8,
        stacked=True,
    )
    board.table(
        "Målstatus (alle mål, ude af kurs først)",
        "Hvor står hvert mål? Undtagelsesdrevet: ude af kurs og i risiko øverst.",
        [
            Sql(
                _STATUS_TABLE + "ORDER BY status_rank, target_id",
                columns=_STATUS_COLUMNS,
            )
        ],
        width=24,
        status_column="Status",
    )
    board.table(
        "Udledning pr. kommune, seneste år (t CO2e)",
        "Hvilke kommuner udleder mest i det seneste år, de har indberettet?",
        [
            Sql(
                """
SELECT DISTINCT ON (municipality_code) municipality AS "Kommune",
       municipality_code AS "Kode", year AS "År",
       round(tonnes_co2e::numeric) AS "t CO2e"
FROM board.emissions_by_municipality
ORDER BY municipality_code, year DESC""",
                columns=("Kommune", "Kode", "År", "t CO2e"),
            )
        ],
        width=24,
        units={"t CO2e": "masst"},
    )
    return board.build()


def municipality() -> Board:
    """One municipality: its accounts, DK2020 targets, counts, fleet, initiatives."""
    board = BoardBuilder(
        "klimapuls-kommune",
        "Klimapuls — kommune",
        "Én kommune: CO2-regnskab pr. sektor, DK2020-mål med sti og prognose, "
        "tællinger, busflåde, initiativer og tovholdere.",
        ["kommune"],
    )
    board.variable(
        "kommune",
        "Kommune",
        "SELECT code AS __value, name AS __text FROM board.municipalities "
        "ORDER BY name",
        default="101",
    )
    board.origin(["co2_account", "mobility_count", "fleet_status", "target"])
    board.barchart(
        "Kommunens udledning pr. sektor",
        "Hvad udleder kommunen, sektor for sektor, år for år (nyeste udgave)?",
        [
            Sql(
                f"""
SELECT year::text AS "År",
       {_SECTOR_COLUMNS}
FROM board.emissions_by_sector
WHERE scope = '$kommune'
GROUP BY year ORDER BY year""",
                columns=("År", *(label for _, label in SECTORS)),
            )
        ],
        unit="masst",
        axis_label="t CO2e",
        x_field="År",
        width=18,
        stacked=True,
    )
    board.timeseries(
        "Kommunens DK2020-mål: udledning, sti og prognose",
        "Er kommunen på vej mod sine egne mål? Målt E(t), kernens sti og "
        "trendprognosen frem til målåret, pr. mål.",
        [
            Sql(
                """
SELECT time, target_id AS "Mål", emissions AS "Udledning",
       path_value AS "Målsti"
FROM board.emission_vs_path
WHERE scope = '$kommune' AND $__timeFilter(time)
ORDER BY time""",
                columns=("time", "Mål", "Udledning", "Målsti"),
                fmt="time_series",
            ),
            Sql(
                """
SELECT time, target_id AS "Mål", forecast_value AS "Prognose"
FROM board.target_forecast
WHERE scope = '$kommune' AND $__timeFilter(time)
ORDER BY time""",
                columns=("time", "Mål", "Prognose"),
                fmt="time_series",
                ref_id="B",
            ),
        ],
        unit="masst",
        axis_label="t CO2e",
        width=24,
    )
    board.table(
        "Kommunens mål",
        "Hvor står kommunens egne mål (DK2020: delmål og netto-nul)?",
        [
            Sql(
                _STATUS_TABLE + "WHERE scope = '$kommune'\n"
                "ORDER BY status_rank, target_id",
                columns=_STATUS_COLUMNS,
            )
        ],
        width=24,
        height=7,
        status_column="Status",
    )
    board.timeseries(
        "Ture pr. dag og transportform",
        "Hvor mange ture tælles i kommunen, og med hvad (bil, cykel, gang, ...)?",
        [
            Sql(
                """
SELECT $__timeGroupAlias(bucket, '1d'), mode AS "Transportform",
       sum(trips) AS "Ture"
FROM board.trips_hourly_by_mode
WHERE municipality_code = '$kommune' AND $__timeFilter(bucket)
GROUP BY 1, 2 ORDER BY 1""",
                columns=("time", "Transportform", "Ture"),
                fmt="time_series",
            )
        ],
        unit="short",
        axis_label="ture pr. dag",
        stacked=True,
        bars=True,
    )
    board.table(
        "Bæredygtige ture og cykelture pr. år",
        "Hvor stor en del af kommunens ture er bæredygtige? Foreløbige år er "
        "mærket (før 1. juni året efter).",
        [
            Sql(
                """
SELECT year AS "År", round(sustainable_share_pct::numeric, 1) AS "Bæredygtig %",
       bike_trips AS "Cykelture", months_covered AS "Måneder talt",
       CASE WHEN provisional THEN 'foreløbig' ELSE 'endelig' END AS "Status"
FROM board.trips_year WHERE scope = '$kommune' ORDER BY year DESC""",
                columns=("År", "Bæredygtig %", "Cykelture", "Måneder talt", "Status"),
            )
        ],
        units={"Bæredygtig %": "percent"},
    )
    board.table(
        "Busser i kommunen (nyeste snapshot pr. kontrakt)",
        "Hvad kører kommunens busser på: diesel, biobrændstof, el, brint?",
        [
            Sql(
                """
SELECT operator AS "Operatør", date AS "Dato", units AS "Kontrakter",
       diesel AS "Diesel", hybrid AS "Hybrid", hvo AS "HVO", biogas AS "Biogas",
       battery_electric AS "El", hydrogen AS "Brint", total_buses AS "I alt"
FROM board.fleet_units_latest WHERE municipality_code = '$kommune'
ORDER BY operator""",
                columns=(
                    "Operatør",
                    "Dato",
                    "Kontrakter",
                    "Diesel",
                    "Hybrid",
                    "HVO",
                    "Biogas",
                    "El",
                    "Brint",
                    "I alt",
                ),
            )
        ],
    )
    board.table(
        "Initiativer med kommunen som tovholder",
        "Hvilke initiativer leder kommunen, og hvad meldte de senest?",
        [
            Sql(
                """
WITH latest AS (
    SELECT DISTINCT ON (initiative_id) initiative_id, round, status
    FROM board.initiative_status ORDER BY initiative_id, round DESC
)
SELECT t.name AS "Initiativ", t.programme AS "Program",
       t.from_round AS "Tovholder siden", l.round AS "Seneste runde",
       l.status AS "Seneste status"
FROM board.initiative_tovholdere t LEFT JOIN latest l USING (initiative_id)
WHERE t.municipality_code = '$kommune'
ORDER BY t.programme, t.name""",
                columns=(
                    "Initiativ",
                    "Program",
                    "Tovholder siden",
                    "Seneste runde",
                    "Seneste status",
                ),
            )
        ],
        width=24,
    )
    return board.build()
