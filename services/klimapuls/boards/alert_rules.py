"""Grafana alert rules as code, mirroring the alert service's rules (issue 8).

Each rule is one SQL query (A) on the board views, returning one row per
alert instance (its text columns become labels, its one number the value),
and a threshold expression (C) on it. Rules hold for `HOLD_FOR` before they
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
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import alerting
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_models

from klimapuls.boards.follow_up import stale_days_sql
from klimapuls.boards.panels import DATASOURCE_UID, SqlQuery
from klimapuls.boards.thresholds import (
    DEAD_LETTER_MIN_EVENTS,
    DEAD_LETTER_RATE,
    DEAD_LETTER_WINDOW_MINUTES,
    EVALUATION_INTERVAL,
    FORECAST_WORSENING_SHARE,
    HOLD_FOR,
)

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
    title: str
    summary: str
    sql: str
    value_column: str
    label_columns: tuple[str, ...]
    threshold: float


# Worse means further from the goal; achieved -> anything else is worse too.
_STATUS_WORSENING = """
WITH rank AS (
    SELECT * FROM (VALUES ('achieved', 0), ('on_track', 1), ('no_data', 1),
                          ('at_risk', 2), ('off_track', 3)) AS r(status, n)
), last_change AS (
    SELECT DISTINCT ON (target_id) target_id, scope, previous_status, status
    FROM board.status_changes ORDER BY target_id, changed_at DESC, id DESC
)
SELECT c.target_id, c.scope, c.status,
       CASE WHEN c.previous_status IS NULL THEN 0
            WHEN c.previous_status = 'achieved' AND c.status <> 'achieved' THEN 1
            WHEN c.status <> 'no_data' AND now_rank.n > before.n THEN 1
            ELSE 0 END AS worsened
FROM last_change c
JOIN rank now_rank ON now_rank.status = c.status
LEFT JOIN rank before ON before.status = c.previous_status
"""

# The forecast now against the one logged with the last status change, as a
# share of the distance between baseline and goal, signed so that positive
# is away from the goal (up for a falling target, down for a rising one).
_FORECAST_WORSENING = """
WITH last_change AS (
    SELECT DISTINCT ON (target_id) target_id, forecast_value
    FROM board.status_changes ORDER BY target_id, changed_at DESC, id DESC
)
SELECT t.target_id, t.scope,
       coalesce(
           (t.forecast_value - c.forecast_value)
           * sign(t.baseline_value - t.target_value)
           / nullif(abs(t.baseline_value - t.target_value), 0), 0)
           AS forecast_worsening
FROM board.target_status t JOIN last_change c USING (target_id)
WHERE t.forecast_value IS NOT NULL AND t.baseline_value IS NOT NULL
  AND t.target_value IS NOT NULL
"""

_STALE_FEEDS = f"""
SELECT feed, feed_key, coalesce(municipality_code, '') AS municipality_code,
       (extract(epoch FROM now() - last_period) / 86400)
           / ({stale_days_sql()}) AS age_share
FROM board.feed_freshness
"""

_MISSING_REPORTS = """
WITH newest AS (
    SELECT programme, max(round) AS round FROM board.initiative_status
    GROUP BY programme
)
SELECT s.initiative_id, n.programme, n.round,
       CASE WHEN m.initiative_id IS NULL THEN 0 ELSE 1 END AS missing
FROM newest n
JOIN (SELECT DISTINCT initiative_id, programme FROM board.initiative_status) s
    USING (programme)
LEFT JOIN board.missing_reports m
    ON m.initiative_id = s.initiative_id AND m.round = n.round
"""

_NO_TOVHOLDER = """
SELECT initiative_id, programme, 1 AS without_tovholder
FROM board.without_tovholder
"""

_DEAD_LETTER_RATE = f"""
WITH stored AS (
    SELECT producer, count(*) AS n FROM board.events_received
    WHERE received_at > now() - interval '{DEAD_LETTER_WINDOW_MINUTES} minutes'
    GROUP BY producer
), rejected AS (
    SELECT producer, count(*) AS n FROM board.dead_letters_by_producer
    WHERE received_at > now() - interval '{DEAD_LETTER_WINDOW_MINUTES} minutes'
    GROUP BY producer
)
SELECT producer,
       CASE WHEN coalesce(s.n, 0) + coalesce(r.n, 0) < {DEAD_LETTER_MIN_EVENTS}
            THEN 0
            ELSE coalesce(r.n, 0)::float / (coalesce(s.n, 0) + coalesce(r.n, 0))
       END AS dead_letter_rate
FROM stored s FULL JOIN rejected r USING (producer)
"""


def alert_rules() -> tuple[AlertRule, ...]:
    """Every Grafana alert rule of Klimapuls, in a stable order."""
    return (
        AlertRule(
            "klimapuls-status-worsening",
            "Mål forværret",
            "Målet {{ $labels.target_id }} ({{ $labels.scope }}) er forværret "
            "til {{ $labels.status }}.",
            _STATUS_WORSENING,
            "worsened",
            ("target_id", "scope", "status"),
            0,
        ),
        AlertRule(
            "klimapuls-forecast-worsening",
            "Prognose forværret",
            "Prognosen for {{ $labels.target_id }} er flyttet mere end "
            f"{FORECAST_WORSENING_SHARE:.0%} af afstanden til målet væk fra målet.",
            _FORECAST_WORSENING,
            "forecast_worsening",
            ("target_id", "scope"),
            FORECAST_WORSENING_SHARE,
        ),
        AlertRule(
            "klimapuls-stale-feed",
            "Feed forældet",
            "{{ $labels.feed }} {{ $labels.feed_key }} er ikke opdateret inden "
            "for sin forventede kadence.",
            _STALE_FEEDS,
            "age_share",
            ("feed", "feed_key", "municipality_code"),
            1,
        ),
        AlertRule(
            "klimapuls-missing-report",
            "Manglende indberetning",
            "{{ $labels.initiative_id }} har ikke indberettet i runde "
            "{{ $labels.round }}.",
            _MISSING_REPORTS,
            "missing",
            ("initiative_id", "programme", "round"),
            0,
        ),
        AlertRule(
            "klimapuls-no-tovholder",
            "Initiativ uden tovholder",
            "{{ $labels.initiative_id }} har ingen tovholder.",
            _NO_TOVHOLDER,
            "without_tovholder",
            ("initiative_id", "programme"),
            0,
        ),
        AlertRule(
            "klimapuls-dead-letter-rate",
            "Mange afviste hændelser",
            f"Over {DEAD_LETTER_RATE:.0%} af hændelserne fra "
            "{{ $labels.producer }} blev afvist i det seneste vindue.",
            _DEAD_LETTER_RATE,
            "dead_letter_rate",
            ("producer",),
            DEAD_LETTER_RATE,
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


def _builder(rule: AlertRule) -> alerting.Rule:
    window = alerting_models.RelativeTimeRange(from_val=600, to=0)
    return (
        alerting.Rule(rule.title)
        .uid(rule.uid)
        .folder_uid(ALERT_FOLDER_UID)
        .rule_group(RULE_GROUP)
        .org_id(1)
        .condition("C")
        .for_val(HOLD_FOR)
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


def rule_payloads() -> list[dict[str, Any]]:
    """Every rule in the shape of Grafana's provisioning API (by uid)."""
    return [
        json.loads(json.dumps(_builder(rule).build(), cls=JSONEncoder))
        for rule in alert_rules()
    ]


_API_ONLY = ("folderUID", "ruleGroup", "orgID", "id", "updated", "provenance")


def provisioning_file() -> dict[str, Any]:
    """The rules in Grafana's file-provisioning format (`provisioning/alerting`)."""
    rules = [
        {key: value for key, value in payload.items() if key not in _API_ONLY}
        for payload in rule_payloads()
    ]
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": RULE_GROUP,
                "folder": ALERT_FOLDER,
                "interval": EVALUATION_INTERVAL,
                "rules": rules,
            }
        ],
    }
