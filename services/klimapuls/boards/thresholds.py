"""The boards' own numbers: how often Grafana evaluates, and feed freshness.

The thresholds of the Grafana alert rules are not here: they are the alert
service's `AlertRules` (`klimapuls.boards.alert_rules` reads them). The
freshness column of the operations board uses the same cadences for counting
sites and fleet reports; a CO2 account counts as late after two years and a
half (it is published the year after next).
"""

from __future__ import annotations

from types import MappingProxyType

from klimapuls.core.alerting import AlertRules

__all__ = ["EVALUATION_INTERVAL", "STALE_FEED_DAYS"]

#: How often Grafana evaluates the rule groups.
EVALUATION_INTERVAL = "5m"

_RULES = AlertRules()

#: Days after the end of a feed's newest period before the board marks it
#: stale (the operations board's freshness table).
STALE_FEED_DAYS = MappingProxyType(
    {
        "co2_account": 913,
        "mobility_count": _RULES.site_max_silence.days,
        "fleet_status": _RULES.fleet_max_silence.days,
    }
)
