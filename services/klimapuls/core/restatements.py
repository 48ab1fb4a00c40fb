"""The restatement audit: which figures changed after a date, and what it did.

Klimapuls keeps every report, so each change of a figure can be replayed in
the order it became known (`klimapuls.core.knowledge`). A **restatement** is
a report that changed a figure that already had a value:

- `co2_account`: the figure of a (municipality, year, sector), at its newest
  vintage, in t CO2e (a new vintage, or a corrected report of one);
- `fleet_status`: the fossil-free and the zero-emission share (%) of one
  contract/garage on one date (a later report of that snapshot);
- `mobility_count`: the trips of the corrected intervals of one site, mode
  and year (a higher revision, or a later report of the same revision),
  summed over the intervals corrected at once.

Reports that became known at the same moment are one step, so a file
restating a figure's subsectors is one restatement of the figure. A report
that leaves the value as it was is not a restatement, nor is a subsector
reported for the first time within a known vintage (it completes the
figure).

`audit(facts, since, until)` lists the restatements that became known after
`since` (up to `until`), and every target whose status or forecast differs
between the old and the new figures and whose series a listed restatement
feeds. Each target change says why, for a notice:
"2021 restated by +4.0 %: status at_risk -> off_track".

The comparison is a counterfactual that holds everything but the restated
figures fixed (`counterfactual`): both sides are evaluated as of `until`
with the target versions known on `until`, and on the same figures, except
that a figure already known on `since` keeps the value it had then on the
"before" side. So a target revised in between, a year that arrived in
between, or time passing is never blamed on a restatement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from klimapuls.core.accounts import current_figures
from klimapuls.core.fleet import (
    FLEET_INDICATORS,
    FOSSIL_FREE_SHARE,
    ZERO_EMISSION_SHARE,
    FleetSnapshot,
    current_snapshots,
    in_region,
)
from klimapuls.core.knowledge import known_by, known_on
from klimapuls.core.mobility import (
    LOCAL_TIME,
    MobilityCount,
    current_counts,
    local_month,
)
from klimapuls.core.model import (
    DENMARK_CODE,
    REGION_CODE,
    TONNES_CO2E,
    Co2Account,
    Progress,
)
from klimapuls.core.progress import (
    EMISSION_INDICATOR,
    MOBILITY_INDICATORS,
    Facts,
    evaluate_all,
)

__all__ = [
    "Audit",
    "Restatement",
    "TargetChange",
    "all_restatements",
    "audit",
    "counterfactual",
]


@dataclass(frozen=True)
class Restatement:
    """One figure changed by a report: from what to what, when, by whom.

    `scope` is the figure's own scope (municipality code; the operator for
    fleet figures); `sector` the CO2 sector, the fleet measure or the mode;
    `detail` what was restated within it (the fleet unit, the counting
    site); `regional` whether it counts for the region's series (`1084`).
    `restated_at` is always in UTC, whatever offset the report came with.
    """

    family: str
    restated_at: datetime
    scope: str
    municipality_code: str | None
    year: int
    sector: str
    old_value: float
    new_value: float
    unit: str
    producer: str
    old_vintage: date | None = None
    new_vintage: date | None = None
    period: str = ""
    detail: str = ""
    regional: bool = True

    def __post_init__(self) -> None:
        # One clock for every reader: a report's own offset, or Danish time
        # for a vintage, must not show through (printed and stored in UTC).
        if self.restated_at.utcoffset() is None:
            raise ValueError("restated_at must be an aware datetime")
        object.__setattr__(self, "restated_at", self.restated_at.astimezone(UTC))

    @property
    def change_pct(self) -> float | None:
        """The change in percent of the old value (None from zero)."""
        if self.old_value == 0:
            return None
        return 100 * (self.new_value - self.old_value) / self.old_value

    def feeds(self, indicator: str, scope: str) -> bool:
        """Whether this figure is part of the series of a target."""
        if self.family == "co2_account":
            ours = indicator == EMISSION_INDICATOR
        elif self.family == "fleet_status":
            ours = indicator == self.sector and indicator in FLEET_INDICATORS
        else:
            ours = indicator in MOBILITY_INDICATORS
        measured = REGION_CODE if scope == DENMARK_CODE else scope
        if measured == REGION_CODE:
            return ours and self.regional
        return ours and measured == self.scope

    def as_json(self) -> dict[str, Any]:
        """The public JSON shape (`klimapuls changes --json`)."""
        return {
            "family": self.family,
            "restated_at": self.restated_at.isoformat(),
            "scope": self.scope,
            "municipality_code": self.municipality_code,
            "year": self.year,
            "period": self.period,
            "sector": self.sector,
            "detail": self.detail,
            "unit": self.unit,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "change_pct": self.change_pct,
            "old_vintage": _iso(self.old_vintage),
            "new_vintage": _iso(self.new_vintage),
            "producer": self.producer,
        }


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _known_from(account: Co2Account) -> datetime:
    """When a figure became known: reported, and its vintage begun."""
    vintage = datetime(
        account.vintage.year,
        account.vintage.month,
        account.vintage.day,
        tzinfo=LOCAL_TIME,
    )
    return max(account.reported_at, vintage)


def _steps(items: Iterable[Any], moment: Any) -> list[tuple[datetime, list[Any]]]:
    """Items grouped by the moment they became known, oldest first."""
    groups: dict[datetime, list[Any]] = defaultdict(list)
    for item in items:
        groups[moment(item)].append(item)
    return sorted(groups.items())


def _account_restatements(accounts: Iterable[Co2Account]) -> list[Restatement]:
    by_figure: dict[tuple[str, int, str], list[Co2Account]] = defaultdict(list)
    for account in accounts:
        by_figure[(account.municipality_code, account.year, account.sector)].append(
            account
        )
    found: list[Restatement] = []
    for key, reports in sorted(by_figure.items()):
        if len(reports) < 2:
            continue  # reported once: nothing restated it
        known: list[Co2Account] = []
        old: tuple[float, date] | None = None
        for moment, group in _steps(reports, _known_from):
            # A new vintage, or another report of a known subsector, restates;
            # a subsector first reported completes the figure instead.
            replaces = old is not None and any(
                a.vintage > old[1] or a.slot in {k.slot for k in known} for a in group
            )
            known.extend(group)
            value = current_figures(known)[key]
            vintage = max(a.vintage for a in known)
            if old is not None and replaces and value != old[0]:
                newest = max(group, key=lambda a: (a.vintage, a.rank))
                found.append(
                    Restatement(
                        family="co2_account",
                        restated_at=moment,
                        scope=key[0],
                        municipality_code=key[0],
                        year=key[1],
                        sector=key[2],
                        old_value=old[0],
                        new_value=value,
                        unit=TONNES_CO2E,
                        producer=newest.producer,
                        old_vintage=old[1],
                        new_vintage=vintage,
                        period=str(key[1]),
                    )
                )
            old = (value, vintage)
    return found


_SHARES = (FOSSIL_FREE_SHARE, ZERO_EMISSION_SHARE)


def _fleet_restatements(snapshots: Iterable[FleetSnapshot]) -> list[Restatement]:
    by_slot: dict[Any, list[FleetSnapshot]] = defaultdict(list)
    for snapshot in snapshots:
        by_slot[snapshot.slot].append(snapshot)
    found: list[Restatement] = []
    for slot, reports in sorted(by_slot.items()):
        if len(reports) < 2:
            continue
        known: list[FleetSnapshot] = []
        old: FleetSnapshot | None = None
        for moment, group in _steps(reports, lambda s: s.reported_at):
            known.extend(group)
            current = current_snapshots(known)[slot]
            if old is not None and current.buses != old.buses:
                found.extend(_share_changes(moment, old, current))
            old = current
    return found


def _share_changes(
    moment: datetime, old: FleetSnapshot, new: FleetSnapshot
) -> list[Restatement]:
    (operator, contract, garage), day = new.slot
    found = []
    for measure in _SHARES:
        before = old.buses.fossil_free_share
        after = new.buses.fossil_free_share
        if measure == ZERO_EMISSION_SHARE:
            before = old.buses.zero_emission_share
            after = new.buses.zero_emission_share
        if before is None or after is None or before == after:
            continue
        found.append(
            Restatement(
                family="fleet_status",
                restated_at=moment,
                scope=operator,
                municipality_code=new.municipality_code,
                year=day.year,
                sector=measure,
                old_value=before,
                new_value=after,
                unit="%",
                producer=new.producer,
                period=day.isoformat(),
                detail="/".join(p for p in (contract, garage) if p),
                regional=in_region(new),
            )
        )
    return found


def _count_restatements(counts: Iterable[MobilityCount]) -> list[Restatement]:
    by_key: dict[Any, list[MobilityCount]] = defaultdict(list)
    for count in counts:
        by_key[count.key].append(count)
    # (moment, producer, municipality, site, year, mode) -> [old, new]
    sums: dict[tuple[datetime, str, str, str, int, str], list[int]] = defaultdict(
        lambda: [0, 0]
    )
    for key, reports in by_key.items():
        known: list[MobilityCount] = []
        old: MobilityCount | None = None
        for moment, group in _steps(reports, lambda c: c.reported_at):
            known.extend(group)
            current = current_counts(known)[key]
            if old is not None and current.count != old.count:
                year, _ = local_month(current.interval_start)
                total = sums[
                    (
                        moment,
                        current.producer,
                        current.municipality_code,
                        current.site_id,
                        year,
                        current.mode,
                    )
                ]
                total[0] += old.count
                total[1] += current.count
            old = current
    return [
        Restatement(
            family="mobility_count",
            restated_at=moment,
            scope=code,
            municipality_code=code,
            year=year,
            sector=mode,
            old_value=float(before),
            new_value=float(after),
            unit="trips",
            producer=producer,
            period=str(year),
            detail=site,
        )
        for (moment, producer, code, site, year, mode), (before, after) in sorted(
            sums.items()
        )
    ]


def all_restatements(facts: Facts) -> list[Restatement]:
    """Every restatement in `facts`, oldest first (what the board lists)."""
    found = [
        *_account_restatements(facts.accounts),
        *_fleet_restatements(facts.fleet),
        *_count_restatements(facts.restated_counts),
    ]
    return sorted(
        found,
        key=lambda r: (r.restated_at, r.family, r.scope, r.year, r.sector, r.detail),
    )


@dataclass(frozen=True)
class TargetChange:
    """A target whose status or forecast changed with restated figures."""

    before: Progress
    after: Progress
    restatements: tuple[Restatement, ...]

    @property
    def target_id(self) -> str:
        """The target's id."""
        return self.after.target_id

    def summary(self) -> str:
        """One line for a notice: what was restated and what it changed."""
        years = sorted({r.year for r in self.restatements})
        changes = [r.change_pct for r in self.restatements]
        biggest = max((c for c in changes if c is not None), key=abs, default=None)
        what = ", ".join(str(y) for y in years[:3]) + (" ..." if len(years) > 3 else "")
        text = f"{what} restated"
        if biggest is not None:
            text += f" by {biggest:+.1f} %"
        parts = []
        if self.before.status != self.after.status:
            parts.append(f"status {self.before.status} -> {self.after.status}")
        if self.before.forecast_value != self.after.forecast_value:
            parts.append(
                f"forecast {_fmt(self.before.forecast_value)} -> "
                f"{_fmt(self.after.forecast_value)}"
            )
        return f"{text}: {'; '.join(parts)}"

    def as_json(self) -> dict[str, Any]:
        """The public JSON shape (`klimapuls changes --json`)."""
        return {
            "target_id": self.target_id,
            "name": self.after.name,
            "scope": self.after.scope,
            "indicator": self.after.indicator,
            "unit": self.after.unit,
            "status_before": self.before.status,
            "status_after": self.after.status,
            "forecast_before": self.before.forecast_value,
            "forecast_after": self.after.forecast_value,
            "latest_year_before": self.before.latest_year,
            "latest_year_after": self.after.latest_year,
            "latest_value_before": self.before.latest_value,
            "latest_value_after": self.after.latest_value,
            "summary": self.summary(),
            "restatements": len(self.restatements),
        }


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:,.1f}"


@dataclass(frozen=True)
class Audit:
    """Restatements known after `since` (up to `until`) and what they changed."""

    since: date
    until: date
    restatements: tuple[Restatement, ...]
    targets: tuple[TargetChange, ...]

    def as_json(self) -> dict[str, Any]:
        """The public JSON shape (`klimapuls changes --json`)."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "restatements": [r.as_json() for r in self.restatements],
            "targets": [t.as_json() for t in self.targets],
        }


def _in_scope(restatement: Restatement, scope: str | None) -> bool:
    if scope is None or scope in (REGION_CODE, DENMARK_CODE):
        return True
    return scope in (restatement.scope, restatement.municipality_code)


def _changed(before: Progress | None, after: Progress) -> bool:
    return before is not None and (
        before.status != after.status or before.forecast_value != after.forecast_value
    )


def _kept(old: Iterable[Any], new: Iterable[Any], key: Any) -> tuple[Any, ...]:
    """`old`, and what of `new` has a key `old` does not know (new figures)."""
    before = tuple(old)
    known = {key(item) for item in before}
    return before + tuple(item for item in new if key(item) not in known)


def counterfactual(then: Facts, now: Facts) -> Facts:
    """`now` with every figure already known in `then` as it was then.

    `then` and `now` are the facts known on two dates (`known_on`). The
    result has `now`'s target versions and every figure of `now`, but the
    figures `then` already held keep their old reports: a CO2 figure per
    (municipality, year, sector, subsector), a fleet snapshot per unit and
    date, trips per (year, municipality, mode) and bike trips per site.
    Evaluated as of one date, it differs from `now` only by what was
    restated in between.
    """
    return replace(
        now,
        accounts=_kept(then.accounts, now.accounts, lambda a: a.slot[:4]),
        fleet=_kept(then.fleet, now.fleet, lambda s: s.slot),
        trips=_kept(
            then.trips, now.trips, lambda t: (t.year, t.municipality_code, t.mode)
        ),
        bike_sites=_kept(
            then.bike_sites,
            now.bike_sites,
            lambda s: (s.year, s.municipality_code, s.site_id, s.mode),
        ),
        counts=None,
        restated_counts=(),
        known_trips={},
    )


def audit(facts: Facts, since: date, until: date, scope: str | None = None) -> Audit:
    """The restatement audit of `facts` between two dates (see the module).

    `facts` must reach both dates: hold the counts (offline) or the trips
    known on `since` and `until` (`load_facts(conn, known_on=(since, until))`).
    `scope` keeps the figures of that scope (a municipality, an operator;
    the region keeps all) and the targets of that scope.
    """
    start, end = known_by(since), known_by(until)
    now = known_on(facts, until)
    window = tuple(
        r
        for r in all_restatements(now)
        if start <= r.restated_at < end and _in_scope(r, scope)
    )
    old = counterfactual(known_on(facts, since), now)
    then = {p.target_id: p for p in evaluate_all(old, until)}
    changes = []
    for after in evaluate_all(now, until):
        if scope is not None and after.scope != scope:
            continue
        feeding = tuple(r for r in window if r.feeds(after.indicator, after.scope))
        before = then.get(after.target_id)
        if feeding and _changed(before, after):
            assert before is not None  # noqa: S101 - checked by _changed
            changes.append(TargetChange(before, after, feeding))
    return Audit(since, until, window, tuple(changes))
