"""The thresholds of the Grafana alert rules and the boards' freshness columns.

One place for every number the boards and the provisioned Grafana alert rules
use, mirroring the alert service's rules of issue 8 (status worsening,
forecast worsening, stale feeds, missing reports / no tovholder, dead-letter
rate). The alert service keeps its own configurable defaults; when both
exist, these constants are to be aligned with them (see README "Dashboards").
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "DEAD_LETTER_MIN_EVENTS",
    "DEAD_LETTER_RATE",
    "DEAD_LETTER_WINDOW_MINUTES",
    "EVALUATION_INTERVAL",
    "FORECAST_WORSENING_SHARE",
    "HOLD_FOR",
    "STALE_FEED_DAYS",
]

#: How often Grafana evaluates the rule groups.
EVALUATION_INTERVAL = "5m"

#: How long a condition must hold before a rule fires: a restatement and its
#: correction within this time raise nothing (no flapping).
HOLD_FOR = "30m"

#: A forecast that moved away from the goal by more than this share of the
#: distance between baseline and goal, since the last logged status change.
FORECAST_WORSENING_SHARE = 0.05

#: Days after the end of a feed's newest period before it counts as stale:
#: a municipality's yearly CO2 account (published the year after next, so
#: two years and a half), a counting site (hourly), an operator's fleet
#: report (monthly, with a fortnight's slack).
STALE_FEED_DAYS = MappingProxyType(
    {"co2_account": 913, "mobility_count": 2, "fleet_status": 45}
)

#: Dead letters per event received from one producer, over the window.
DEAD_LETTER_RATE = 0.05
DEAD_LETTER_WINDOW_MINUTES = 60
#: Fewer events than this from a producer in the window never fire the rule.
DEAD_LETTER_MIN_EVENTS = 10
