"""The follow-up boards: initiatives and tovholdere, and operations."""

from __future__ import annotations

from klimapuls.boards.panels import Board, BoardBuilder, Sql
from klimapuls.boards.thresholds import STALE_FEED_DAYS

__all__ = [
    "INITIATIVE_STATUSES",
    "RULE_LABELS",
    "initiatives",
    "operations",
    "stale_days_sql",
]

#: Reported initiative statuses with their Danish labels.
INITIATIVE_STATUSES: tuple[tuple[str, str], ...] = (
    ("received", "Modtaget"),
    ("confirmed", "Bekræftet"),
    ("on_track", "På plan"),
    ("delayed", "Forsinket"),
    ("not_started", "Ikke startet"),
    ("completed", "Afsluttet"),
    ("stopped", "Stoppet"),
)


#: The alert service's rules by their Danish names.
RULE_LABELS: tuple[tuple[str, str], ...] = (
    ("target_status", "Mål skrider"),
    ("forecast_worsened", "Prognose forværret"),
    ("feed_stale", "Forældet feed"),
    ("missing_report", "Manglende statusrapport"),
    ("no_tovholder", "Ingen tovholder"),
    ("dead_letter_rate", "Mange afviste hændelser"),
)
#: Event families, alert notice kinds and channels by their Danish names.
KIND_LABELS: tuple[tuple[str, str], ...] = (
    ("co2_account", "CO2-regnskab"),
    ("fleet_status", "Flådetal"),
    ("mobility_count", "Trafiktælling"),
    ("initiative_status", "Initiativstatus"),
    ("target", "Mål"),
)
STATE_LABELS: tuple[tuple[str, str], ...] = (
    ("firing", "Udløst"),
    ("worsened", "Forværret"),
    ("resolved", "Løst"),
    ("escalated", "Eskaleret"),
)
CHANNEL_LABELS: tuple[tuple[str, str], ...] = (
    ("email", "E-mail"),
    ("webhook", "Webhook"),
)


def label_sql(column: str, labels: tuple[tuple[str, str], ...]) -> str:
    """A SQL CASE giving the Danish label of `column`'s value (else the value)."""
    cases = " ".join(f"WHEN '{key}' THEN '{label}'" for key, label in labels)
    return f"CASE {column} {cases} ELSE {column} END"


RULE_LABEL_SQL = (
    "CASE rule "
    + " ".join(f"WHEN '{rule}' THEN '{label}'" for rule, label in RULE_LABELS)
    + " ELSE rule END"
)


def stale_days_sql(column: str = "feed") -> str:
    """A SQL CASE giving each feed's allowed age in days (`STALE_FEED_DAYS`)."""
    cases = " ".join(
        f"WHEN '{feed}' THEN {days}" for feed, days in STALE_FEED_DAYS.items()
    )
    return f"CASE {column} {cases} END"


def initiatives() -> Board:
    """Which initiatives report, which do not, and who is in charge."""
    board = BoardBuilder(
        "klimapuls-initiatives",
        "Klimapuls — initiativer og tovholdere",
        "Status pr. runde, manglende indberetninger, initiativer uden "
        "tovholder og overdragelser af tovholderskab.",
        ["initiativer", "tovholdere"],
    )
    board.origin(["initiative_status"])
    board.stat(
        "Opfølgning nu",
        "Hvor mange indberetninger mangler i den nyeste runde, og hvor mange "
        "åbne initiativer har ingen tovholder?",
        [
            Sql(
                """
WITH newest AS (
    SELECT programme, max(round) AS round FROM board.missing_reports
    GROUP BY programme
)
SELECT (SELECT count(*) FROM board.missing_reports m
        JOIN newest n USING (programme, round)) AS "Mangler indberetning",
       (SELECT count(*) FROM board.without_tovholder) AS "Uden tovholder",
       (SELECT count(*) FROM board.handovers) AS "Overdragelser"
""",
                columns=("Mangler indberetning", "Uden tovholder", "Overdragelser"),
            )
        ],
        unit="none",
        width=18,
    )
    board.barchart(
        "Status pr. runde",
        "Hvordan går initiativerne, runde for runde (den gældende indberetning)?",
        [
            Sql(
                'SELECT round AS "Runde",\n'
                + ",\n".join(
                    f"       count(*) FILTER (WHERE status = '{key}') AS \"{label}\""
                    for key, label in INITIATIVE_STATUSES
                )
                + "\nFROM board.initiative_status GROUP BY round ORDER BY round",
                columns=("Runde", *(label for _, label in INITIATIVE_STATUSES)),
            )
        ],
        unit="none",
        axis_label="initiativer",
        x_field="Runde",
        width=24,
        stacked=True,
    )
    board.table(
        "Manglende indberetninger",
        "Hvilke initiativer meldte ikke i en runde, og hvem skulle have gjort det?",
        [
            Sql(
                """
SELECT round AS "Runde", programme AS "Program", name AS "Initiativ",
       array_to_string(tovholdere, ', ') AS "Tovholdere"
FROM board.missing_reports ORDER BY round DESC, programme, name""",
                columns=("Runde", "Program", "Initiativ", "Tovholdere"),
            )
        ],
    )
    board.table(
        "Initiativer uden tovholder",
        "Hvilke åbne initiativer har ingen tovholder («det foreslås at knytte "
        "en tovholder på»)?",
        [
            Sql(
                """
SELECT name AS "Initiativ", programme AS "Program", group_name AS "Gruppe",
       estimate_dkk_m AS "Overslag (mio. kr.)"
FROM board.without_tovholder ORDER BY programme, name""",
                columns=("Initiativ", "Program", "Gruppe", "Overslag (mio. kr.)"),
            )
        ],
        units={"Overslag (mio. kr.)": "none"},
    )
    board.table(
        "Overdragelser af tovholderskab",
        "Hvor skiftede tovholderne, fra hvem til hvem, og fra hvilken dato?",
        [
            Sql(
                """
SELECT effective_date AS "Fra dato", round AS "Runde",
       initiative_id AS "Initiativ",
       array_to_string(previous, ', ') AS "Før",
       array_to_string(new, ', ') AS "Efter"
FROM board.handovers ORDER BY effective_date DESC""",
                columns=("Fra dato", "Runde", "Initiativ", "Før", "Efter"),
            )
        ],
    )
    board.barchart(
        "Initiativer pr. tovholder",
        "Hvem bærer flest initiativer lige nu?",
        [
            Sql(
                """
SELECT tovholder AS "Tovholder", count(*) AS "Initiativer"
FROM board.initiative_tovholdere GROUP BY tovholder
ORDER BY count(*) DESC, tovholder LIMIT 20""",
                columns=("Tovholder", "Initiativer"),
            )
        ],
        unit="none",
        axis_label="initiativer",
        x_field="Tovholder",
    )
    return board.build()


def operations() -> Board:
    """Is the platform healthy: dead letters, freshness, restatements, alerts."""
    board = BoardBuilder(
        "klimapuls-operations",
        "Klimapuls — drift",
        "Afviste hændelser pr. producent og årsag, datafriskhed pr. feed, "
        "statusskift, rettelser og sendte varsler.",
        ["drift"],
        time_from="now-1y",
        time_to="now",
    )
    board.origin(
        [
            "co2_account",
            "fleet_status",
            "mobility_count",
            "initiative_status",
            "target",
        ]
    )
    board.timeseries(
        "Modtagne hændelser pr. familie",
        "Kommer der data ind, og fra hvilke hændelsesfamilier?",
        [
            Sql(
                f"""
SELECT $__timeGroupAlias(received_minute, $__interval),
       {label_sql("kind", KIND_LABELS)} AS "Familie",
       sum(events)::bigint AS "Hændelser"
FROM board.events_received_minutely
WHERE $__timeFilter(received_minute)
GROUP BY 1, 2 ORDER BY 1""",
                columns=("time", "Familie", "Hændelser"),
                fmt="time_series",
            )
        ],
        unit="short",
        axis_label="hændelser",
        width=18,
        bars=True,
    )
    board.timeseries(
        "Afviste hændelser pr. producent",
        "Hvilke producenter sender hændelser, der afvises, og hvornår?",
        [
            Sql(
                """
SELECT $__timeGroupAlias(rejected_at, $__interval), producer AS "Producent",
       count(*) AS "Afviste"
FROM board.dead_letters_by_producer
WHERE $__timeFilter(rejected_at)
GROUP BY 1, 2 ORDER BY 1""",
                columns=("time", "Producent", "Afviste"),
                fmt="time_series",
            )
        ],
        unit="short",
        axis_label="afviste hændelser",
        bars=True,
    )
    board.table(
        "Afviste hændelser pr. producent og årsag",
        "Hvad afvises, fra hvem, i hvilket felt og hvorfor? Intet går tabt.",
        [
            Sql(
                f"""
SELECT producer AS "Producent", {label_sql("kind", KIND_LABELS)} AS "Familie",
       field AS "Felt",
       reason AS "Årsag", count(*) AS "Antal", max(rejected_at) AS "Senest"
FROM board.dead_letters_by_producer
GROUP BY producer, kind, field, reason
ORDER BY count(*) DESC, max(rejected_at) DESC""",
                columns=("Producent", "Familie", "Felt", "Årsag", "Antal", "Senest"),
            )
        ],
    )
    board.table(
        "Datafriskhed pr. feed",
        "Hvilke feeds er forældede: en kommunes CO2-regnskab, et tællested, "
        "en operatørs flådetal? Ældste først; grænser i dage pr. feed.",
        [
            Sql(
                f"""
SELECT {label_sql("feed", KIND_LABELS)} AS "Feed", feed_name AS "Kilde",
       last_period AS "Nyeste periode",
       last_received AS "Senest modtaget",
       round((extract(epoch FROM now() - last_period) / 86400)::numeric, 1)
           AS "Alder (dage)",
       {stale_days_sql()} AS "Grænse (dage)",
       now() - last_period > make_interval(days => {stale_days_sql()})
           AS "Forældet",
       CASE WHEN synthetic THEN 'syntetisk' ELSE 'indberettet' END AS "Data"
FROM board.feed_freshness
ORDER BY now() - last_period > make_interval(days => {stale_days_sql()}) DESC,
         last_period""",
                columns=(
                    "Feed",
                    "Kilde",
                    "Nyeste periode",
                    "Senest modtaget",
                    "Alder (dage)",
                    "Grænse (dage)",
                    "Forældet",
                    "Data",
                ),
            )
        ],
        width=24,
        units={"Alder (dage)": "d", "Grænse (dage)": "d"},
    )
    board.table(
        "Statusskift (seneste)",
        "Hvilke mål skiftede status, forældelse eller prognose, hvornår, fra "
        "hvad til hvad, og i hvilket område? Hvert skift sendes også på "
        "target-status til varsling af tovholdere.",
        [
            Sql(
                """
SELECT changed_at AS "Tidspunkt",
       CASE what_changed WHEN 'status' THEN 'Status'
            WHEN 'stale' THEN 'Forældelse' ELSE 'Prognose' END AS "Ændring",
       coalesce(nullif(name, ''), target_id) AS "Mål",
       coalesce(scope_name, scope) AS "Område",
       previous_status AS "Fra", status AS "Status", stale AS "Forældet",
       round(previous_forecast_value::numeric) AS "Prognose før",
       round(forecast_value::numeric) AS "Prognose",
       round(gap_to_path::numeric) AS "Afstand til sti",
       published_at AS "Publiceret"
FROM board.status_changes ORDER BY changed_at DESC, id DESC LIMIT 100""",
                columns=(
                    "Tidspunkt",
                    "Ændring",
                    "Mål",
                    "Område",
                    "Fra",
                    "Status",
                    "Forældet",
                    "Prognose før",
                    "Prognose",
                    "Afstand til sti",
                    "Publiceret",
                ),
            )
        ],
        status_column="Status",
    )
    board.stat(
        "Sendte varsler i perioden",
        "Hvor mange varsler er sendt i den valgte periode, og til hvor mange "
        "modtagere?",
        [
            Sql(
                """
SELECT count(*) AS "Sendte varsler", count(DISTINCT recipient) AS "Modtagere"
FROM board.alerts_sent WHERE $__timeFilter(sent_at)""",
                columns=("Sendte varsler", "Modtagere"),
            )
        ],
        unit="short",
        width=6,
        height=9,
    )
    board.timeseries(
        "Sendte varsler pr. regel",
        "Hvornår blev der sendt varsler, og for hvilke regler (mål skrider, "
        "prognose forværret, forældet feed, manglende rapport, ingen tovholder, "
        "afviste hændelser)?",
        [
            Sql(
                f"""
SELECT $__timeGroupAlias(sent_at, $__interval), {RULE_LABEL_SQL} AS "Regel",
       count(*) AS "Varsler"
FROM board.alerts_sent
WHERE $__timeFilter(sent_at)
GROUP BY 1, 2 ORDER BY 1""",
                columns=("time", "Regel", "Varsler"),
                fmt="time_series",
            )
        ],
        unit="short",
        axis_label="sendte varsler",
        width=18,
        bars=True,
    )
    board.table(
        "Rettelser",
        "Hvilke tal er rettet efter at være indberettet: gammel og ny værdi, "
        "vintage og producent (nyeste først; tidspunkter i UTC). Samme liste "
        "som `klimapuls changes` og rapportens afsnit om rettelser.",
        [
            Sql(
                f"""
SELECT restated_at AS "Rettet", {label_sql("family", KIND_LABELS)} AS "Familie",
       scope AS "Område",
       period AS "Periode", sector AS "Tal",
       detail AS "Detalje", old_value AS "Før", new_value AS "Efter",
       round(change_pct::numeric, 1) AS "Ændring (%)",
       old_vintage AS "Vintage før", new_vintage AS "Vintage efter",
       unit AS "Enhed", producer AS "Producent"
FROM board.restatements
ORDER BY restated_at DESC, scope, period, sector, detail LIMIT 200""",
                columns=(
                    "Rettet",
                    "Familie",
                    "Område",
                    "Periode",
                    "Tal",
                    "Detalje",
                    "Før",
                    "Efter",
                    "Ændring (%)",
                    "Vintage før",
                    "Vintage efter",
                    "Enhed",
                    "Producent",
                ),
            )
        ],
        width=24,
    )
    board.table(
        "Sendte varsler",
        "Hvilke varsler er sendt, til hvem, via hvilken kanal, og i hvilken "
        "tilstand er de (udløst, kvitteret, afsluttet)?",
        [
            Sql(
                f"""
SELECT sent_at AS "Sendt", {RULE_LABEL_SQL} AS "Regel",
       coalesce(target_id, initiative_id) AS "Mål/initiativ", scope AS "Område",
       recipient AS "Modtager", {label_sql("channel", CHANNEL_LABELS)} AS "Kanal",
       {label_sql("state", STATE_LABELS)} AS "Tilstand",
       alert_key AS "Nøgle"
FROM board.alerts_sent WHERE $__timeFilter(sent_at)
ORDER BY sent_at DESC LIMIT 100""",
                columns=(
                    "Sendt",
                    "Regel",
                    "Mål/initiativ",
                    "Område",
                    "Modtager",
                    "Kanal",
                    "Tilstand",
                    "Nøgle",
                ),
            )
        ],
        width=24,
    )
    return board.build()
