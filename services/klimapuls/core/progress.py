"""Progress of every target from the facts: the one implementation for all callers.

The targets service (on facts loaded from the database), `klimapuls
progress` (the same load) and `klimapuls progress --offline` (facts folded
from JSONL event files by `klimapuls.core.fold`) all end here, so the same
events give the same numbers everywhere, floats included:

1. `Facts`: every target version, CO2 account figure and fleet snapshot as
   received, the current trips per year, municipality and mode, and the
   per-site bike years. `klimapuls.core.knowledge.known_on` cuts them to
   what was known on a date.
2. Targets: the newest version of every target counts (`current_targets`);
   older versions stay as history.
3. Series, per (indicator, measured scope), at the as-of date:
   - `co2e_total`: E(t) from the account figures
     (`klimapuls.core.accounts`: newest vintage per municipality, year and
     sector; the region counts only complete years). `DK` is measured
     against the regional series (a reference line);
   - fleet shares: the share on each year's newest snapshot date, counting
     only snapshots dated on or before the as-of date (`klimapuls.core.fleet`);
   - trips: the modal split and bike trips of each year, counted only when
     all 12 months are counted and ended by the as-of date
     (`klimapuls.core.mobility`);
   - other indicators have no feed yet: their targets show `no_data`.
4. `klimapuls.core.targets.evaluate` on each target and its series.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from klimapuls.core.accounts import (
    YearValue,
    current_figures,
    emission_series,
    measured_scope,
    municipality_totals,
)
from klimapuls.core.fleet import (
    FLEET_INDICATORS,
    FleetShare,
    FleetSnapshot,
    fleet_shares,
    share_series,
)
from klimapuls.core.messages import LastEvaluation, TargetStatusChange
from klimapuls.core.mobility import (
    BIKE_TRIPS,
    SUSTAINABLE_TRIP_SHARE,
    MobilityCount,
    ModalSplit,
    SiteYear,
    YearTrips,
    mobility_series,
    modal_splits,
    year_totals,
)
from klimapuls.core.model import REGION_CODE, Co2Account, Progress, Target
from klimapuls.core.reference import municipality_codes
from klimapuls.core.targets import evaluate, trajectory

__all__ = [
    "EMISSION_INDICATOR",
    "FORECAST_EPSILON",
    "MOBILITY_INDICATORS",
    "Facts",
    "MeasuredSeries",
    "MobilityYears",
    "SeriesKey",
    "current_targets",
    "emission_series_by_scope",
    "evaluate_all",
    "forecast_moved",
    "series_key",
    "status_changes",
    "target_series",
    "trajectories",
]

#: The indicator computed from CO2 accounts.
EMISSION_INDICATOR = "co2e_total"
#: The indicators computed from mobility counts.
MOBILITY_INDICATORS = frozenset({SUSTAINABLE_TRIP_SHARE, BIKE_TRIPS})

#: (indicator, measured scope): which series a target is evaluated against.
SeriesKey = tuple[str, str]


def current_targets(targets: Iterable[Target]) -> list[Target]:
    """The newest version of every target, by target id."""
    newest: dict[str, Target] = {}
    for target in targets:
        seen = newest.get(target.target_id)
        if seen is None or target.version > seen.version:
            newest[target.target_id] = target
    return [newest[t] for t in sorted(newest)]


def series_key(target: Target) -> SeriesKey:
    """The series `target` is measured against (`DK` uses the region's)."""
    return (target.indicator, measured_scope(target.scope))


def emission_series_by_scope(
    totals: Mapping[tuple[str, int], float], codes: Iterable[str] | None = None
) -> dict[str, dict[int, YearValue]]:
    """E(t) of the region and of every municipality that has figures."""
    codes = tuple(codes) if codes is not None else municipality_codes()
    return {
        scope: emission_series(totals, scope, codes)
        for scope in sorted({REGION_CODE, *(code for code, _ in totals)})
    }


@dataclass(frozen=True)
class MobilityYears:
    """Trips as counted: the yearly rollup and the per-site bike years."""

    trips: tuple[YearTrips, ...] = ()
    bike_sites: tuple[SiteYear, ...] = ()

    @classmethod
    def of_sites(cls, sites: Iterable[SiteYear]) -> MobilityYears:
        """From per-site years of every mode."""
        every = list(sites)
        return cls(
            tuple(year_totals(every)), tuple(s for s in every if s.mode == "bike")
        )


@dataclass(frozen=True)
class Facts:
    """Everything target progress is computed from, as received.

    `trips` and `bike_sites` are already folded (current counts only): the
    database holds too many counts to load, and their rollup is exact
    (integers). For other dates than now:

    - `counts` holds every count when the caller has them (the offline
      fold), so any known-on date can be folded from them;
    - `known_trips` holds the trips as known on the dates a loader was asked
      for (the database aggregates them from the counts known then);
    - `restated_counts` holds every count of a count key reported more than
      once (for the restatement audit).
    """

    targets: tuple[Target, ...] = ()
    accounts: tuple[Co2Account, ...] = ()
    fleet: tuple[FleetSnapshot, ...] = ()
    trips: tuple[YearTrips, ...] = ()
    bike_sites: tuple[SiteYear, ...] = ()
    counts: tuple[MobilityCount, ...] | None = None
    restated_counts: tuple[MobilityCount, ...] = ()
    known_trips: Mapping[date, MobilityYears] = field(default_factory=dict)


@dataclass
class MeasuredSeries:
    """The measured series of every indicator and scope at `as_of`, on demand."""

    facts: Facts
    as_of: date
    _emissions: dict[str, dict[int, YearValue]] | None = field(default=None)
    _shares: dict[str, list[FleetShare]] | None = field(default=None)
    _splits: list[ModalSplit] | None = field(default=None)

    def emissions(self) -> dict[str, dict[int, YearValue]]:
        """E(t) of every scope with figures, and of the region."""
        if self._emissions is None:
            totals = municipality_totals(current_figures(self.facts.accounts))
            self._emissions = emission_series_by_scope(totals)
        return self._emissions

    def shares(self) -> dict[str, list[FleetShare]]:
        """The fleet of every operator and of the region, by date, up to `as_of`."""
        if self._shares is None:
            # A snapshot of a later date describes a fleet that is not there yet.
            dated = (s for s in self.facts.fleet if s.date <= self.as_of)
            self._shares = fleet_shares(dated)
        return self._shares

    def splits(self) -> list[ModalSplit]:
        """The modal split of every scope and year, as counted by `as_of`."""
        if self._splits is None:
            self._splits = modal_splits(self.facts.trips, self.as_of)
        return self._splits

    def of(self, target: Target) -> dict[int, YearValue]:
        """The series `target` is measured against (empty: no data feed)."""
        indicator, scope = series_key(target)
        if indicator == EMISSION_INDICATOR:
            return self.emissions().get(scope, {})
        if indicator in FLEET_INDICATORS:
            return share_series(self.shares(), scope, indicator)
        if indicator in MOBILITY_INDICATORS:
            return mobility_series(
                self.splits(), scope, indicator, self.facts.bike_sites
            )
        return {}


def evaluate_all(
    facts: Facts,
    as_of: date,
    indicators: Collection[str] | None = None,
    measured: MeasuredSeries | None = None,
) -> list[Progress]:
    """Progress of the newest version of every target (of `indicators`, if given).

    A target whose series is unknown is evaluated on an empty series, so it
    shows `no_data` rather than disappearing. `measured` (of the same facts
    and date) lets a caller share the series with `target_series`.
    """
    measured = measured or MeasuredSeries(facts, as_of)
    return [
        evaluate(target, measured.of(target), as_of)
        for target in current_targets(facts.targets)
        if indicators is None or target.indicator in indicators
    ]


def target_series(measured: MeasuredSeries) -> list[tuple[Target, list[YearValue]]]:
    """Every current target with the yearly values it is measured against.

    These are the values `evaluate_all` judges (bike trips compared like
    with like, the region's complete years, ...), so a board that shows
    them needs no rule of its own (the targets service stores them in
    `target_series`).
    """
    return [
        (target, list(measured.of(target).values()))
        for target in current_targets(measured.facts.targets)
    ]


#: A forecast that moves by more than this share of its size is logged as an
#: evaluation of its own (the alert rules compare forecasts between them).
FORECAST_EPSILON = 0.001


def forecast_moved(before: float | None, after: float | None) -> bool:
    """Whether a forecast moved by more than `FORECAST_EPSILON` (or came or went)."""
    if before is None or after is None:
        return before != after
    return abs(after - before) > FORECAST_EPSILON * max(abs(before), abs(after))


def _changed(last: LastEvaluation | None, progress: Progress) -> bool:
    if last is None:
        return True
    status, stale, forecast = last
    return (status, stale) != (progress.status, progress.stale) or forecast_moved(
        forecast, progress.forecast_value
    )


def status_changes(
    last: Mapping[str, LastEvaluation],
    evaluated: Iterable[Progress],
    now: datetime,
) -> list[TargetStatusChange]:
    """The targets whose status, staleness or forecast moved since last logged.

    Recomputing the same figures therefore logs nothing, a forecast that
    moves logs an evaluation (so alerts can compare forecasts), and a
    target's first evaluation is a change from nothing.
    """
    return [
        TargetStatusChange.between(last.get(p.target_id), p, now)
        for p in evaluated
        if _changed(last.get(p.target_id), p)
    ]


def trajectories(
    evaluated: Iterable[Progress],
) -> dict[str, tuple[int, list[tuple[int, float]]]]:
    """The path points of every evaluated target: id -> (version, points)."""
    return {p.target_id: (p.version, trajectory(p)) for p in evaluated}
