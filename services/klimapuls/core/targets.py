"""Target math: trajectories, forecasts and statuses, as pure functions.

For a target with scope S, baseline year b, target year y and reduction p
(85 % -> 0.85; net zero -> 1.0):

- E(t) is the measured series of S (see `klimapuls.core.accounts`): for
  emissions the sum of `tonnes_co2e` over all sectors at the newest vintage;
  for the region only years where all 29 municipalities reported count
  ("complete"). Only counted years up to the as-of year are used; coverage
  (how many reported) is kept for every year.
- Baseline E_b = E(b), or the target's `baseline_value` when given.
  Target value E_T = E_b * (1 - p). Share and count targets give E_T directly
  (`target_value`) or as E_b * (1 + increase) (`increase_pct`). A share or
  count target that names no baseline year starts at its first counted year.
- Path P(t) = E_b + (E_T - E_b) * (t - b) / (y - b), a straight line from
  (b, E_b) to (y, E_T).
- L is the newest counted year. `reduction_achieved_pct` = 100 * (1 - E(L)/E_b)
  (negative when the value rose, as a share target wants);
  `gap_to_path` = E(L) - P(L) (positive = above the path).
- Forecast: an ordinary least-squares line through the last (up to) 5 counted
  years, at least 3 needed, else none; `forecast_value` = max(0, line at y)
  (shares are also capped at 100 %).
- `required_annual_reduction` = (E(L) - E_T) / (y - L) when y > L (negative for
  rising targets: the required annual increase).
- Status: `no_data` if E_b or E(L) is missing; `achieved` if E(L) has reached
  E_T; `on_track` if E(L) is on the good side of P(L) (or on it) and the
  forecast is none or reaches E_T; `off_track` if E(L) is on the bad side of
  P(L) and the forecast misses E_T; otherwise `at_risk`. For emission (and
  other "lower is better") targets the good side is at or below; for rising
  targets (shares, counts) at or above: the rules are the emission rules on
  the negated values.
- No deadline ("no date stated", `target_year` None), or no usable path (a
  share target whose first counted year is not before its target year):
  there is no path, forecast or required rate. The status is `no_data`,
  `achieved` as above, `on_track` when the least-squares trend of the last
  (up to) 5 counted years (at least 3) moves toward E_T, and otherwise
  `at_risk`; never `off_track`, as no deadline can be missed.
- `stale` is a separate flag: L is more than 2 years before the as-of year.

Comparisons ("at or below", "reaches") allow a relative rounding tolerance
of 1e-9, so a series that lies exactly on the path counts as on it even
though its binary floating-point figures differ in the last bits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from klimapuls.core.accounts import YearValue
from klimapuls.core.model import Coverage, Progress, Status, Target

__all__ = [
    "FORECAST_MAX_YEARS",
    "FORECAST_MIN_YEARS",
    "SHARE_UNIT",
    "STALE_AFTER_YEARS",
    "evaluate",
    "forecast",
    "path_value",
    "status_of",
    "target_value",
    "trajectory",
    "trend_slope",
]

FORECAST_MAX_YEARS = 5
FORECAST_MIN_YEARS = 3
STALE_AFTER_YEARS = 2
SHARE_UNIT = "%"


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


def _fit(points: Sequence[tuple[int, float]]) -> tuple[float, float, float] | None:
    """(mean x, mean y, slope) of the OLS line through the last (up to) 5 points."""
    recent = sorted(points)[-FORECAST_MAX_YEARS:]
    if len(recent) < FORECAST_MIN_YEARS:
        return None
    n = len(recent)
    mean_x = sum(x for x, _ in recent) / n
    mean_y = sum(y for _, y in recent) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in recent)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in recent)
    return mean_x, mean_y, sxy / sxx


def forecast(points: Sequence[tuple[int, float]], year: int) -> float | None:
    """OLS line through the last (up to) 5 points, at `year`; None if < 3 points."""
    fit = _fit(points)
    if fit is None:
        return None
    mean_x, mean_y, slope = fit
    return mean_y + slope * (year - mean_x)


def trend_slope(points: Sequence[tuple[int, float]]) -> float | None:
    """Slope per year of the OLS line through the last (up to) 5 points."""
    fit = _fit(points)
    return None if fit is None else fit[2]


_TOLERANCE = 1e-9


def _at_most(a: float, b: float, scale: float = 0.0) -> bool:
    """`a <= b`, up to binary floating-point rounding at the series' magnitude.

    `scale` is the size of the figures the two values came from: a forecast
    of a net-zero goal is ~1e-9 off zero after fitting figures in millions.
    """
    return a <= b + _TOLERANCE * max(1.0, abs(a), abs(b), scale)


def status_of(
    rising: bool,
    latest: float,
    path: float,
    goal: float,
    predicted: float | None,
) -> Status:
    """The status rules on one year's figures (see the module docstring)."""
    # Negate rising targets so that "lower is better" holds below.
    sign = -1.0 if rising else 1.0
    scale = max(abs(latest), abs(path), abs(goal))
    latest, path, goal = sign * latest, sign * path, sign * goal
    pred = None if predicted is None else sign * predicted
    if _at_most(latest, goal, scale):
        return "achieved"
    on_path = _at_most(latest, path, scale)
    if on_path and (pred is None or _at_most(pred, goal, scale)):
        return "on_track"
    if not on_path and pred is not None and not _at_most(pred, goal, scale):
        return "off_track"
    return "at_risk"


def _status_without_path(
    rising: bool, latest: float, goal: float, slope: float | None
) -> Status:
    sign = -1.0 if rising else 1.0
    if _at_most(sign * latest, sign * goal):
        return "achieved"
    if slope is not None and sign * slope < 0:
        return "on_track"
    return "at_risk"


def _coverage(
    series: Mapping[int, YearValue], as_of_year: int
) -> tuple[Coverage, tuple[Coverage, ...]]:
    years = sorted(y for y in series if y <= as_of_year)
    by_year = tuple(series[y].coverage for y in years)
    newest = by_year[-1] if by_year else Coverage(None, 0, 0)
    return newest, by_year


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
    rising = target.rising
    deadline = target.target_year
    has_path = (
        deadline is not None and baseline_year is not None and baseline_year < deadline
    )

    predicted = None
    if has_path and deadline is not None:
        predicted = forecast(list(counted.items()), deadline)
        if predicted is not None:
            predicted = max(0.0, predicted)
            if target.unit == SHARE_UNIT:
                predicted = min(100.0, predicted)

    path = gap = achieved_pct = required = None
    status: Status = "no_data"
    if baseline is not None and goal is not None and latest is not None:
        achieved_pct = 100 * (1 - latest / baseline) if baseline else None
        if (
            has_path
            and deadline is not None
            and baseline_year is not None
            and latest_year is not None
        ):
            path = path_value(baseline_year, baseline, deadline, goal, latest_year)
            gap = latest - path
            if deadline > latest_year:
                required = (latest - goal) / (deadline - latest_year)
            status = status_of(rising, latest, path, goal, predicted)
        else:
            slope = trend_slope(list(counted.items()))
            status = _status_without_path(rising, latest, goal, slope)
    coverage, coverage_by_year = _coverage(series, as_of.year)
    return Progress(
        target_id=target.target_id,
        name=target.name,
        scope=target.scope,
        version=target.version,
        indicator=target.indicator,
        unit=target.unit,
        baseline_year=baseline_year,
        baseline_value=baseline,
        target_year=deadline,
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
        coverage=coverage,
        as_of=as_of,
        counted_years=tuple(sorted(counted)),
        coverage_by_year=coverage_by_year,
    )


def trajectory(progress: Progress) -> list[tuple[int, float]]:
    """The path P(t) for every year from the baseline to the target year.

    The one place the path is computed for drawing: boards read these points
    instead of recomputing the line in SQL. Empty for a target without a
    path (no deadline, or no baseline yet).
    """
    b, y = progress.baseline_year, progress.target_year
    baseline, goal = progress.baseline_value, progress.target_value
    if b is None or y is None or baseline is None or goal is None or b >= y:
        return []
    return [(t, path_value(b, baseline, y, goal, t)) for t in range(b, y + 1)]
