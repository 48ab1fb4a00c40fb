"""Grafana's SQL macros and template variables, expanded as Grafana does.

Used to run every panel and alert query outside Grafana (tests, `klimapuls
grafana validate --database`): `$__timeFilter(col)`, `$__timeFrom()`,
`$__timeTo()`, `$__timeGroupAlias(col, interval)`, `$__timeGroup(...)`,
`$__interval` and `$name` / `${name}` variables, with the same SQL Grafana's
PostgreSQL datasource generates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["TimeRange", "expand", "interval_for", "parse_relative"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_RELATIVE = re.compile(r"^now(?:([+-])(\d+)([smhdwy]))?$")
#: Grafana's interval steps; a panel of ~1,000 px gets one point per pixel.
_STEPS = ("1m", "5m", "15m", "1h", "6h", "1d", "7d", "30d", "1y")
_MAX_POINTS = 1000


def _seconds(interval: str) -> int:
    match = re.fullmatch(r"'?(\d+)([smhdwy])'?", interval.strip())
    if match is None:
        raise ValueError(f"{interval!r} is not an interval such as '1h'")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_relative(text: str, now: datetime) -> datetime:
    """`now`, `now-40y`, `now+20y` (Grafana's relative times) at `now`."""
    match = _RELATIVE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a relative time such as now-7d")
    sign, amount, unit = match.groups()
    if sign is None:
        return now
    delta = timedelta(seconds=int(amount) * _UNITS[unit])
    return now + delta if sign == "+" else now - delta


@dataclass(frozen=True)
class TimeRange:
    """A dashboard's time range, resolved."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, dashboard: Mapping[str, object], now: datetime) -> TimeRange:
        """The default time range of a dashboard JSON at `now`."""
        time = dashboard.get("time")
        if not isinstance(time, Mapping):
            raise ValueError("the dashboard has no time range")
        return cls(
            parse_relative(str(time["from"]), now), parse_relative(str(time["to"]), now)
        )


def interval_for(span: TimeRange) -> str:
    """`$__interval`: the smallest step giving at most ~1,000 points."""
    seconds = (span.end - span.start).total_seconds() / _MAX_POINTS
    return next((s for s in _STEPS if _seconds(s) >= seconds), _STEPS[-1])


def _literal(moment: datetime) -> str:
    return f"'{moment.isoformat()}'::timestamptz"


def expand(sql: str, span: TimeRange, variables: Mapping[str, str]) -> str:
    """The SQL Grafana sends for `sql` in `span` with `variables` chosen."""
    interval = interval_for(span)
    text = sql.replace("$__interval_ms", str(_seconds(interval) * 1000))
    text = text.replace("$__interval", f"'{interval}'")

    def group(match: re.Match[str], alias: bool) -> str:
        column, step = (part.strip() for part in match.group(1).split(",", 1))
        seconds = _seconds(step)
        expression = (
            f"to_timestamp(floor(extract(epoch from {column})/{seconds})*{seconds})"
        )
        return f'{expression} AS "time"' if alias else expression

    text = re.sub(r"\$__timeGroupAlias\(([^)]*)\)", lambda m: group(m, True), text)
    text = re.sub(r"\$__timeGroup\(([^)]*)\)", lambda m: group(m, False), text)
    text = re.sub(
        r"\$__timeFilter\(([^)]*)\)",
        lambda m: (
            f"{m.group(1).strip()} BETWEEN {_literal(span.start)} "
            f"AND {_literal(span.end)}"
        ),
        text,
    )
    text = text.replace("$__timeFrom()", _literal(span.start))
    text = text.replace("$__timeTo()", _literal(span.end))
    for name, value in variables.items():
        text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
    leftover = re.search(r"\$\{?\w+", text)
    if leftover is not None:
        raise ValueError(f"{leftover.group(0)} is neither a macro nor a variable")
    return text
