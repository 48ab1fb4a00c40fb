"""Target math: trajectories, forecasts and statuses, as pure functions.

For a target with scope S, baseline year b, target year y and reduction p
(85 % -> 0.85; net zero -> 1.0):

- E(t) is the measured series of S (see `klimapuls.core.accounts`); only
  counted (complete) years are used.
- Baseline E_b = E(b), or the target's `baseline_value` when given.
  Target value E_T = E_b * (1 - p). Share and count targets give E_T directly
  (`target_value`) or as E_b * (1 + increase).
- Path P(t) = E_b + (E_T - E_b) * (t - b) / (y - b), a straight line from the
  baseline to the target.
- L is the newest counted year. `reduction_achieved_pct` = 100 * (1 - E(L)/E_b),
  `gap_to_path` = E(L) - P(L) (positive = above the path).
- Forecast: an ordinary least-squares line through the last (up to) 5 counted
  years, at least 3 needed, else none; `forecast_value` = max(0, line at y)
  (shares are also capped at 100).
- `required_annual_reduction` = (E(L) - E_T) / (y - L) when y > L (negative for
  rising targets: the required annual increase).
- Status: `no_data` if E_b or E(L) is missing; `achieved` if E(L) has reached E_T;
  `on_track` if E(L) is on the good side of P(L) and the forecast (if any)
  reaches E_T; `off_track` if E(L) is on the bad side of the path and the
  forecast misses E_T; otherwise `at_risk`. For emission targets "good side"
  means at or below; for rising targets (shares, counts) at or above.
- `stale`: the newest counted year is more than 2 years before the as-of year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from klimapuls.core.accounts import YearValue
from klimapuls.core.model import Coverage, Progress, Status, Target

__all__ = [
    "FORECAST_MAX_YEARS",
    "FORECAST_MIN_YEARS",
    "STALE_AFTER_YEARS",
    "evaluate",
    "forecast",
    "path_value",
    "target_value",
]

FORECAST_MAX_YEARS = 5
FORECAST_MIN_YEARS = 3
STALE_AFTER_YEARS = 2
_SHARE_UNIT = "%"


def target_value(target: Target, baseline: float | None) -> float | None:
    """E_T: the value the indicator must reach by the target year."""
    if target.target_value is not None:
        return target.target_value
    if baseline is None:
        return None
    if target.reduction_pct is not None:
        return baseline * (1 - target.reduction_pct / 100)
    if target.increase_pct is not None:
        return baseline * (1 + target.increase_pct / 100)
    return None


def path_value(
    baseline_year: int, baseline: float, target_year: int, goal: float, year: int
) -> float:
    """P(t): the straight path from (b, E_b) to (y, E_T), at `year`."""
    return baseline + (goal - baseline) * (year - baseline_year) / (
        target_year - baseline_year
    )


def forecast(points: Sequence[tuple[int, float]], year: int) -> float | None:
    """OLS line through the last (up to) 5 points, at `year`; None if < 3 points."""
    recent = sorted(points)[-FORECAST_MAX_YEARS:]
    if len(recent) < FORECAST_MIN_YEARS:
        return None
    n = len(recent)
    mean_x = sum(x for x, _ in recent) / n
    mean_y = sum(y for _, y in recent) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in recent)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in recent)
    slope = sxy / sxx
    return mean_y + slope * (year - mean_x)


def _status(
    rising: bool,
    latest: float,
    path: float,
    goal: float,
    predicted: float | None,
) -> Status:
    # Flip the sign for rising targets so that "lower is better" holds below.
    sign = -1.0 if rising else 1.0
    latest, path, goal = sign * latest, sign * path, sign * goal
    pred = None if predicted is None else sign * predicted
    if latest <= goal:
        return "achieved"
    if latest <= path and (pred is None or pred <= goal):
        return "on_track"
    if latest > path and pred is not None and pred > goal:
        return "off_track"
    return "at_risk"


def _newest_coverage(series: Mapping[int, YearValue]) -> Coverage:
    if not series:
        return Coverage(None, 0, 0)
    newest = max(series)
    return series[newest].coverage


def evaluate(target: Target, series: Mapping[int, YearValue], as_of: date) -> Progress:
    """Where `target` stands on `as_of`, given the measured series of its scope."""
    counted = {
        year: point.value
        for year, point in series.items()
        if point.counted and year <= as_of.year
    }
    baseline_year = target.baseline_year
    if baseline_year is None and counted:
        # Share targets may name no baseline: start the path at the first year.
        baseline_year = min(counted)
    baseline = target.baseline_value
    if baseline is None and baseline_year is not None:
        baseline = counted.get(baseline_year)
    goal = target_value(target, baseline)
    latest_year = max(counted) if counted else None
    latest = counted.get(latest_year) if latest_year is not None else None
    rising = goal is not None and baseline is not None and goal > baseline
    predicted = forecast(list(counted.items()), target.target_year)
    if predicted is not None:
        predicted = max(0.0, predicted)
        if target.unit == _SHARE_UNIT:
            predicted = min(100.0, predicted)

    path = gap = achieved_pct = required = None
    status: Status = "no_data"
    if (
        baseline is not None
        and goal is not None
        and latest is not None
        and latest_year is not None
        and baseline_year is not None
        and baseline_year != target.target_year
    ):
        path = path_value(
            baseline_year, baseline, target.target_year, goal, latest_year
        )
        gap = latest - path
        achieved_pct = 100 * (1 - latest / baseline) if baseline else None
        if target.target_year > latest_year:
            required = (latest - goal) / (target.target_year - latest_year)
        status = _status(rising, latest, path, goal, predicted)
    return Progress(
        target_id=target.target_id,
        name=target.name,
        scope=target.scope,
        version=target.version,
        indicator=target.indicator,
        unit=target.unit,
        baseline_year=baseline_year,
        baseline_value=baseline,
        target_year=target.target_year,
        target_value=goal,
        latest_year=latest_year,
        latest_value=latest,
        reduction_achieved_pct=achieved_pct,
        path_value=path,
        gap_to_path=gap,
        forecast_value=predicted,
        required_annual_reduction=required,
        status=status,
        stale=latest_year is not None and latest_year < as_of.year - STALE_AFTER_YEARS,
        coverage=_newest_coverage(series),
        as_of=as_of,
        counted_years=tuple(sorted(counted)),
    )
