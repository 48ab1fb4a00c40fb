"""Grafana alert rules as code, mirroring the alert service's rules (issue 8).

Each rule is one SQL query (A) on the board views, returning one row per
alert instance (its text columns become labels, its one number the value),
and a threshold expression (C) on it. Every threshold, cadence, window and
the hold time come from the alert service's `AlertRules`, and each query
computes the alert service's rule (`klimapuls.core.alerting`) from the board
views, so Grafana and the alert service fire for the same keys (`alert_key`,
tested against each other). Rules hold for `AlertRules.hold` before they
fire, and Grafana sends a resolved notice when the condition clears. The
rules are built with grafana-foundation-sdk's alerting builders (the shape
of Grafana's provisioning API) and written to the file-provisioning format
by `provisioning_file`.

The rules: a target's status worsened at its last logged change; its
forecast moved away from the goal; a feed is stale; an initiative missed
the newest round's report; an open initiative has no tovholder; a
producer's dead-letter rate passed its threshold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import alerting
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_models

from klimapuls.boards.panels import DATASOURCE_UID, SqlQuery
from klimapuls.boards.thresholds import EVALUATION_INTERVAL
from klimapuls.core.alerting import (
    FEED_CO2,
    FEED_FLEET,
    FEED_SITE,
    ONGOING,
    RULE_DEAD_LETTERS,
    RULE_FEED_STALE,
    RULE_FORECAST,
    RULE_MISSING_REPORT,
    RULE_NO_TOVHOLDER,
    RULE_TARGET_STATUS,
    AlertRules,
)
from klimapuls.core.model import LOWER_IS_BETTER

__all__ = [
    "ALERT_FOLDER",
    "ALERT_FOLDER_UID",
    "RULE_GROUP",
    "AlertRule",
    "alert_rules",
    "provisioning_file",
    "rule_payloads",
]

ALERT_FOLDER = "Klimapuls"
ALERT_FOLDER_UID = "klimapuls"
RULE_GROUP = "klimapuls"
_EXPRESSION_UID = "__expr__"


@dataclass(frozen=True)
class AlertRule:
    """One rule: its identity, what it asks, its query and its threshold."""

    uid: str
    rule: str
    title: str
    summary: str
    sql: str
    value_column: str
    label_columns: tuple[str, ...]
    threshold: float


def _hold(rules: AlertRules) -> str:
    """The hold time in Grafana's duration notation (`1h`, `90m`, `30s`)."""
    seconds = int(rules.hold.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


def _usable(value: str) -> str:
    """SQL for `usable_forecast`: a forecast is usable when present and not 0."""
    return f"({value} IS NOT NULL AND {value} <> 0)"


def _worsening_pct(before: str, after: str) -> str:
    """SQL for `forecast_worsening_pct` (0 unless both forecasts are usable)."""
    lower = _quoted(LOWER_IS_BETTER)
    change = (
        f"(CASE WHEN c.indicator IN ({lower}) THEN {after} - {before} "
        f"ELSE {before} - {after} END)"
    )
    scale = f"greatest(abs({before}), abs(coalesce(c.target_value, 0)))"
    return (
        f"(CASE WHEN NOT ({_usable(before)} AND {_usable(after)}) THEN 0 "
        f"WHEN {change} <= 0 THEN 0 ELSE 100 * {change} / {scale} END)"
    )


def _fresh_reference(before: str, share: float) -> str:
    """The reference a new worsening opens (NULL: none), as `observe` sets it."""
    return (
        f"CASE WHEN {_worsening_pct(before, 'c.forecast_value')} > {share} "
        f"THEN {before} END"
    )


def _target_fold(rules: AlertRules) -> str:
    """Every target's evaluations folded as `core.alerting.observe` does.

    Per evaluation: the open forecast reference and whether an achievement
    was lost.
    """
    share = rules.forecast_worsen_pct
    same = "f.version = c.version"
    kept = (
        f"{same} AND f.reference IS NOT NULL AND (NOT {_usable('c.forecast_value')} "
        f"OR {_worsening_pct('f.reference', 'c.forecast_value')} > {share})"
    )
    before = (
        f"CASE WHEN {same} THEN coalesce(c.previous_forecast_value, "
        "f.forecast_value) ELSE c.previous_forecast_value END"
    )
    lost = (
        "CASE WHEN c.status IN ('achieved', 'no_data') THEN false "
        "WHEN c.previous_status = 'achieved' THEN {held} "
        "ELSE {previous} END"
    )
    # An achievement counts once it held for the hold time (`observe`); not
    # known when it began (another version before): it counts.
    hold = int(rules.hold.total_seconds())
    held = (
        f"CASE WHEN {same} AND f.achieved_since IS NOT NULL "
        f"THEN c.changed_at - f.achieved_since >= interval '{hold} seconds' "
        "ELSE true END"
    )
    since = (
        f"CASE WHEN c.status = 'achieved' THEN CASE WHEN {same} "
        "AND f.status = 'achieved' THEN f.achieved_since ELSE c.changed_at END END"
    )
    return f"""
WITH RECURSIVE changes AS (
    SELECT id, changed_at, target_id, version, scope, indicator, status,
           previous_status, target_year, target_value, forecast_value,
           previous_forecast_value,
           row_number() OVER (PARTITION BY target_id ORDER BY id) AS n
    FROM board.status_changes
), folded AS (
    SELECT c.target_id, c.n, c.version, c.scope, c.status, c.target_year,
           c.forecast_value,
           {_fresh_reference("c.previous_forecast_value", share)} AS reference,
           {lost.format(previous="false", held="true")} AS lost,
           CASE WHEN c.status = 'achieved' THEN c.changed_at END AS achieved_since
    FROM changes c WHERE c.n = 1
    UNION ALL
    SELECT c.target_id, c.n, c.version, c.scope, c.status, c.target_year,
           c.forecast_value,
           CASE WHEN {kept} THEN f.reference
                ELSE {_fresh_reference(f"({before})", share)} END,
           {lost.format(previous=f"({same} AND f.lost)", held=held)},
           {since}
    FROM folded f JOIN changes c ON c.target_id = f.target_id AND c.n = f.n + 1
), newest AS (
    SELECT DISTINCT ON (target_id) * FROM folded ORDER BY target_id, n DESC
)"""


def _key(rule: str, subject: str, scope: str, period: str) -> str:
    """SQL for `alert_key`: `rule:subject:scope:period`."""
    return f"concat_ws(':', '{rule}', {subject}, {scope}, {period})"


_TARGET_PERIOD = f"coalesce(target_year::text, '{ONGOING}')"


def _status_worsening(rules: AlertRules) -> str:
    worse = _quoted(("at_risk", "off_track"))
    key = _key(RULE_TARGET_STATUS, "target_id", "scope", _TARGET_PERIOD)
    return f"""{_target_fold(rules)}
SELECT {key} AS alert_key, target_id, scope, status,
       CASE WHEN status IN ({worse}) OR lost THEN 1 ELSE 0 END AS worsened
FROM newest
"""


def _forecast_worsening(rules: AlertRules) -> str:
    key = _key(RULE_FORECAST, "target_id", "scope", _TARGET_PERIOD)
    return f"""{_target_fold(rules)}
SELECT {key} AS alert_key, target_id, scope,
       CASE WHEN reference IS NOT NULL THEN 1 ELSE 0 END AS forecast_worsened
FROM newest
"""


def _stale_feeds(rules: AlertRules) -> str:
    family = (
        f"CASE feed WHEN 'co2_account' THEN '{FEED_CO2}' "
        f"WHEN 'mobility_count' THEN '{FEED_SITE}' "
        f"WHEN 'fleet_status' THEN '{FEED_FLEET}' END"
    )
    scope = "coalesce(municipality_code, feed_key)"
    site = int(rules.site_max_silence.total_seconds())
    fleet = int(rules.fleet_max_silence.total_seconds())
    key = _key(RULE_FEED_STALE, f"{family} || '/' || feed_key", scope, f"'{ONGOING}'")
    return f"""
SELECT {key} AS alert_key, feed, feed_key, {scope} AS scope,
       CASE
         WHEN feed = 'co2_account' THEN
           (date_part('year', last_period)
            < date_part('year', now() AT TIME ZONE 'UTC')
              - {rules.co2_max_lag_years})::int
         WHEN feed = 'fleet_status' THEN
           (now() - (last_period::date::timestamp AT TIME ZONE 'UTC')
            > interval '{fleet} seconds')::int
         ELSE (now() - last_period > interval '{site} seconds')::int
       END AS stale
FROM board.feed_freshness
"""


def _missing_reports(rules: AlertRules) -> str:
    # As `initiative_conditions`: a round `YYYY-MM` ends on the first of the
    # next month (UTC); its report is missing once `report_grace` has passed
    # since, and an older round that still lacks it keeps firing.
    key = _key(RULE_MISSING_REPORT, "initiative_id", "programme", "round")
    grace = int(rules.report_grace.total_seconds())
    return f"""
SELECT {key} AS alert_key, initiative_id, programme, round,
       (now() >= (to_date(round || '-01', 'YYYY-MM-DD') + interval '1 month')
                 ::timestamp AT TIME ZONE 'UTC'
                 + interval '{grace} seconds')::int AS missing
FROM board.missing_reports
"""


def _no_tovholder() -> str:
    key = _key(RULE_NO_TOVHOLDER, "initiative_id", "programme", f"'{ONGOING}'")
    return f"""
SELECT {key} AS alert_key, initiative_id, programme, 1 AS without_tovholder
FROM board.without_tovholder
"""


def _dead_letter_rate(rules: AlertRules) -> str:
    window = int(rules.dead_letter_window.total_seconds())
    since = f"now() - interval '{window} seconds'"
    key = _key(RULE_DEAD_LETTERS, "producer", f"'{ONGOING}'", f"'{ONGOING}'")
    return f"""
WITH stored AS (
    SELECT producer, count(*) AS n FROM board.events_received
    WHERE received_at >= {since} GROUP BY producer
), rejected AS (
    SELECT alert_producer AS producer, count(*) AS n
    FROM board.dead_letters_by_producer
    WHERE received_at >= {since} GROUP BY alert_producer
)
SELECT {key} AS alert_key, producer,
       CASE WHEN coalesce(s.n, 0) + coalesce(r.n, 0) < {rules.dead_letter_min_events}
            THEN 0
            ELSE 100 * coalesce(r.n, 0)::float / (coalesce(s.n, 0) + coalesce(r.n, 0))
       END AS dead_letter_pct
FROM stored s FULL JOIN rejected r USING (producer)
"""


def alert_rules(rules: AlertRules | None = None) -> tuple[AlertRule, ...]:
    """Every Grafana alert rule of Klimapuls, in a stable order.

    Thresholds, cadences and windows come from `rules` (the alert service's
    `AlertRules`, by default its defaults), so both raise the same alerts.
    """
    rules = rules or AlertRules()
    return (
        AlertRule(
            "klimapuls-status-worsening",
            RULE_TARGET_STATUS,
            "Mål forværret",
            "Målet {{ $labels.target_id }} ({{ $labels.scope }}) er i risiko, "
            "ikke på sporet eller ikke længere opfyldt ({{ $labels.status }}).",
            _status_worsening(rules),
            "worsened",
            ("alert_key", "target_id", "scope", "status"),
            0,
        ),
        AlertRule(
            "klimapuls-forecast-worsening",
            RULE_FORECAST,
            "Prognose forværret",
            "Prognosen for {{ $labels.target_id }} er forværret med mere end "
            f"{rules.forecast_worsen_pct:g} %.",
            _forecast_worsening(rules),
            "forecast_worsened",
            ("alert_key", "target_id", "scope"),
            0,
        ),
        AlertRule(
            "klimapuls-stale-feed",
            RULE_FEED_STALE,
            "Feed forældet",
            "{{ $labels.feed }} {{ $labels.feed_key }} er ikke opdateret inden "
            "for sin forventede kadence.",
            _stale_feeds(rules),
            "stale",
            ("alert_key", "feed", "feed_key", "scope"),
            0,
        ),
        AlertRule(
            "klimapuls-missing-report",
            RULE_MISSING_REPORT,
            "Manglende indberetning",
            "{{ $labels.initiative_id }} har ikke indberettet i runde "
            "{{ $labels.round }}.",
            _missing_reports(rules),
            "missing",
            ("alert_key", "initiative_id", "programme", "round"),
            0,
        ),
        AlertRule(
            "klimapuls-no-tovholder",
            RULE_NO_TOVHOLDER,
            "Initiativ uden tovholder",
            "{{ $labels.initiative_id }} har ingen tovholder.",
            _no_tovholder(),
            "without_tovholder",
            ("alert_key", "initiative_id", "programme"),
            0,
        ),
        AlertRule(
            "klimapuls-dead-letter-rate",
            RULE_DEAD_LETTERS,
            "Mange afviste hændelser",
            f"Over {rules.dead_letter_max_pct:g} % af hændelserne fra "
            "{{ $labels.producer }} blev afvist i det seneste vindue.",
            _dead_letter_rate(rules),
            "dead_letter_pct",
            ("alert_key", "producer"),
            rules.dead_letter_max_pct,
        ),
    )


class _Expression(cogvariants.Dataquery):
    """A server-side expression (`__expr__`) of Grafana Alerting."""

    def __init__(self, model: dict[str, object]) -> None:
        self.model = model

    def to_json(self) -> dict[str, object]:
        return self.model


class _Model(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, query: cogvariants.Dataquery) -> None:
        self._query = query

    def build(self) -> cogvariants.Dataquery:
        return self._query


def _threshold(rule: AlertRule) -> dict[str, object]:
    return {
        "refId": "C",
        "type": "threshold",
        "expression": "A",
        "datasource": {"type": "__expr__", "uid": _EXPRESSION_UID},
        "conditions": [
            {"evaluator": {"type": "gt", "params": [rule.threshold]}},
        ],
    }


def _builder(rule: AlertRule, hold: str) -> alerting.Rule:
    window = alerting_models.RelativeTimeRange(from_val=600, to=0)
    return (
        alerting.Rule(rule.title)
        .uid(rule.uid)
        .folder_uid(ALERT_FOLDER_UID)
        .rule_group(RULE_GROUP)
        .org_id(1)
        .condition("C")
        .for_val(hold)
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels({"service": "klimapuls", "rule": rule.uid})
        .annotations({"summary": rule.summary})
        .with_query(
            alerting.Query("A")
            .datasource_uid(DATASOURCE_UID)
            .relative_time_range(window)
            .model(_Model(SqlQuery("A", rule.sql.strip(), "table")))
        )
        .with_query(
            alerting.Query("C")
            .datasource_uid(_EXPRESSION_UID)
            .relative_time_range(window)
            .model(_Model(_Expression(_threshold(rule))))
        )
    )


def rule_payloads(rules: AlertRules | None = None) -> list[dict[str, Any]]:
    """Every rule in the shape of Grafana's provisioning API (by uid)."""
    rules = rules or AlertRules()
    return [
        json.loads(json.dumps(_builder(rule, _hold(rules)).build(), cls=JSONEncoder))
        for rule in alert_rules(rules)
    ]


_API_ONLY = ("folderUID", "ruleGroup", "orgID", "id", "updated", "provenance")


def provisioning_file(rules: AlertRules | None = None) -> dict[str, Any]:
    """The rules in Grafana's file-provisioning format (`provisioning/alerting`)."""
    payloads = [
        {key: value for key, value in payload.items() if key not in _API_ONLY}
        for payload in rule_payloads(rules)
    ]
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": RULE_GROUP,
                "folder": ALERT_FOLDER,
                "interval": EVALUATION_INTERVAL,
                "rules": payloads,
            }
        ],
    }
