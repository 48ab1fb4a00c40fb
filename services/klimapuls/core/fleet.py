"""Bus fleet electrification: snapshots, restatements and shares, as pure functions.

The rules, used alike by the fleet service (on rows from the database) and by
tests and tools (on events from files):

- A snapshot counts the buses of one operator's contract or garage (a *unit*)
  on one date, by propulsion. A later `reported_at` for the same unit and date
  restates it: only the newest report counts; older ones are kept but ignored.
  The same fact sent twice with different event ids counts once (the later
  `reported_at` wins, then the larger event id, so the choice is stable).
- Fossil-free and zero-emission are different measures: HVO/biodiesel and
  biogas are fossil-free but not zero-emission (the EU Clean Vehicles
  Directive's "clean" includes biofuels); battery-electric and hydrogen fuel
  cell buses are both; diesel and diesel hybrids are neither.
- The fleet of a scope on a date sums the newest snapshot, on or before that
  date, of every unit in the scope: a unit that does not report again keeps its
  last counts, so a contract that ends reports a snapshot with zero buses.
- Scopes: an operator (`movia`, `region-hovedstaden`, a municipality code or
  an operating company's slug) covers that operator's units. The region
  (`1084`) covers every unit in the region: units with a `municipality_code`,
  and all units of the region and of its municipalities. Movia also serves
  Region Sjælland, so a Movia (or company) unit without a municipality code
  counts for its operator only. A bus must be reported by one operator only,
  or the region counts it twice.
- A report may list its buses (`bus_ids`, as many as it counts). A bus listed
  on a date under one unit of an operator is refused under another unit of
  that operator on that date (`bus_clash_issue`), so it is never counted
  twice; the unit's newest report holds its list (a restatement replaces it,
  one without ids clears it). Reports without ids are trusted as counted.
- The yearly series of a scope, for share targets, is the share on the
  scope's newest snapshot date in each year.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from operator import add, attrgetter, sub
from typing import Any

from klimapuls.core.accounts import YearValue
from klimapuls.core.errors import FieldIssue
from klimapuls.core.model import DENMARK_CODE, REGION_CODE, Coverage
from klimapuls.core.reference import municipality_codes

__all__ = [
    "FLEET_INDICATORS",
    "FOSSIL_FREE",
    "FOSSIL_FREE_SHARE",
    "PROPULSIONS",
    "REGION_OPERATOR",
    "ZERO_EMISSION",
    "ZERO_EMISSION_SHARE",
    "BusCounts",
    "BusPlace",
    "BusRegister",
    "FleetShare",
    "FleetSnapshot",
    "bus_clash_issue",
    "current_snapshots",
    "fleet_issues",
    "fleet_shares",
    "in_region",
    "operator_of_scope",
    "share_series",
    "unit_name",
    "yearly_shares",
]

#: Propulsion classes, in the order of the `fleet_status.v1` schema.
PROPULSIONS: tuple[str, ...] = (
    "diesel",
    "hvo",
    "biogas",
    "battery_electric",
    "hydrogen",
    "hybrid",
)
#: Propulsions that burn no fossil fuel (biofuels count; diesel hybrids do not).
FOSSIL_FREE: frozenset[str] = frozenset(
    {"hvo", "biogas", "battery_electric", "hydrogen"}
)
#: Propulsions with no tailpipe emissions.
ZERO_EMISSION: frozenset[str] = frozenset({"battery_electric", "hydrogen"})

#: Indicator of the fossil-free share of buses, in percent.
FOSSIL_FREE_SHARE = "fossil_free_bus_share"
#: Indicator of the zero-emission share of buses, in percent.
ZERO_EMISSION_SHARE = "zero_emission_bus_share"
#: Operator id of Region Hovedstaden itself (its own bus contracts).
REGION_OPERATOR = "region-hovedstaden"
#: Indicators the fleet service evaluates targets for.
FLEET_INDICATORS: tuple[str, ...] = (FOSSIL_FREE_SHARE, ZERO_EMISSION_SHARE)

UnitKey = tuple[str, str, str]  # operator, contract ("" if none), garage ("" if none)
#: A unit on a date: what fleet reports restate each other in.
FleetSlot = tuple[UnitKey, date]
#: A bus of an operator on a date: operator, date, bus id.
BusPlace = tuple[str, date, str]


@dataclass(frozen=True)
class BusCounts:
    """Buses by propulsion; a propulsion not reported counts as zero."""

    diesel: int = 0
    hvo: int = 0
    biogas: int = 0
    battery_electric: int = 0
    hydrogen: int = 0
    hybrid: int = 0

    @classmethod
    def from_mapping(cls, counts: Mapping[str, int]) -> BusCounts:
        """Build from `{"diesel": 12, ...}`; unknown propulsions raise `KeyError`."""
        unknown = set(counts) - set(PROPULSIONS)
        if unknown:
            raise KeyError(f"unknown propulsion(s): {', '.join(sorted(unknown))}")
        return cls(**{name: int(value) for name, value in counts.items()})

    # Field by field, positionally (a fleet's sweep adds and subtracts a
    # unit's counts for every snapshot of every scope).
    def __add__(self, other: BusCounts) -> BusCounts:
        return BusCounts(*map(add, _counts(self), _counts(other)))

    def __sub__(self, other: BusCounts) -> BusCounts:
        return BusCounts(*map(sub, _counts(self), _counts(other)))

    @property
    def counts(self) -> tuple[int, ...]:
        """Counts in the order of `PROPULSIONS` (the order of the fields)."""
        return tuple(_counts(self))

    def as_dict(self) -> dict[str, int]:
        """Counts by propulsion name."""
        return {name: getattr(self, name) for name in PROPULSIONS}

    @property
    def total(self) -> int:
        """All buses."""
        return sum(self.as_dict().values())

    @property
    def fossil_free(self) -> int:
        """Buses that burn no fossil fuel (biofuel, electric, hydrogen)."""
        return sum(getattr(self, name) for name in FOSSIL_FREE)

    @property
    def zero_emission(self) -> int:
        """Buses without tailpipe emissions (battery-electric, hydrogen)."""
        return sum(getattr(self, name) for name in ZERO_EMISSION)

    @property
    def fossil_free_share(self) -> float | None:
        """Fossil-free buses in percent of all; None for an empty fleet."""
        return _percent(self.fossil_free, self.total)

    @property
    def zero_emission_share(self) -> float | None:
        """Zero-emission buses in percent of all; None for an empty fleet."""
        return _percent(self.zero_emission, self.total)


#: A `BusCounts`' counts as a tuple, in its field order.
_counts = attrgetter(*(f.name for f in fields(BusCounts)))


def _percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


@dataclass(frozen=True)
class FleetSnapshot:
    """One report of a unit's buses on a date (one `fleet_status.v1` event)."""

    event_id: str
    operator: str
    date: date
    reported_at: datetime
    buses: BusCounts
    contract: str | None = None
    garage: str | None = None
    municipality_code: str | None = None
    producer: str = field(default="", compare=False)

    @property
    def unit(self) -> UnitKey:
        """The contract or garage this snapshot counts, within its operator."""
        return (self.operator, self.contract or "", self.garage or "")

    @property
    def slot(self) -> FleetSlot:
        """What this report competes for: one unit on one date."""
        return (self.unit, self.date)

    @property
    def rank(self) -> tuple[datetime, str]:
        """Order within a slot: the latest `reported_at` counts (then event id)."""
        return (self.reported_at, self.event_id)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> FleetSnapshot:
        """Build from a validated `fleet_status.v1` event."""
        return cls(
            event_id=event["event_id"],
            producer=event.get("producer") or "",
            operator=event["operator"],
            contract=event.get("contract") or None,
            garage=event.get("garage") or None,
            municipality_code=event.get("municipality_code"),
            date=date.fromisoformat(event["date"]),
            reported_at=datetime.fromisoformat(event["reported_at"]),
            buses=BusCounts.from_mapping(event["buses"]),
        )


@dataclass(frozen=True)
class FleetShare:
    """The fleet of a scope (an operator, or `1084` for the region) on a date."""

    scope: str
    date: date
    buses: BusCounts
    units: int

    @property
    def fossil_free_share(self) -> float | None:
        """Fossil-free buses in percent; None for an empty fleet."""
        return self.buses.fossil_free_share

    @property
    def zero_emission_share(self) -> float | None:
        """Zero-emission buses in percent; None for an empty fleet."""
        return self.buses.zero_emission_share

    def share(self, indicator: str) -> float | None:
        """The share an indicator (`fossil_free_bus_share`, ...) measures."""
        if indicator == FOSSIL_FREE_SHARE:
            return self.fossil_free_share
        if indicator == ZERO_EMISSION_SHARE:
            return self.zero_emission_share
        raise ValueError(f"{indicator!r} is not a fleet indicator")


def current_snapshots(
    snapshots: Iterable[FleetSnapshot],
) -> dict[tuple[UnitKey, date], FleetSnapshot]:
    """The counting snapshot of every (unit, date): the newest report wins."""
    newest: dict[tuple[UnitKey, date], FleetSnapshot] = {}
    for snapshot in snapshots:
        best = newest.get(snapshot.slot)
        if best is None or snapshot.rank > best.rank:
            newest[snapshot.slot] = snapshot
    return newest


def _sweep(scope: str, snapshots: Iterable[FleetSnapshot]) -> list[FleetShare]:
    """Fleet of one scope on each of its snapshot dates, carrying units forward."""
    by_date: dict[date, list[FleetSnapshot]] = defaultdict(list)
    for snapshot in snapshots:
        by_date[snapshot.date].append(snapshot)
    # The counts as tuples in `BusCounts`' field order (integers: any order
    # of sums is exact), made into `BusCounts` once per date.
    latest: dict[UnitKey, tuple[int, ...]] = {}
    running: tuple[int, ...] = _counts(BusCounts())
    shares: list[FleetShare] = []
    for day in sorted(by_date):
        for snapshot in by_date[day]:
            # One snapshot per unit and date here (restatements are folded).
            unit, counts = snapshot.unit, _counts(snapshot.buses)
            before = latest.get(unit)
            running = tuple(map(add, running, counts))
            if before is not None:
                running = tuple(map(sub, running, before))
            latest[unit] = counts
        shares.append(FleetShare(scope, day, BusCounts(*running), len(latest)))
    return shares


def in_region(snapshot: FleetSnapshot) -> bool:
    """Whether a unit's buses run in Region Hovedstaden (and count for `1084`)."""
    return (
        snapshot.municipality_code is not None
        or snapshot.operator == REGION_OPERATOR
        or snapshot.operator in municipality_codes()
    )


def fleet_shares(snapshots: Iterable[FleetSnapshot]) -> dict[str, list[FleetShare]]:
    """The fleet by date of every operator and of the region (`1084`).

    Restatements are folded first (`current_snapshots`); each scope gets a row
    on every date one of its units reported, oldest first.
    """
    current = list(current_snapshots(snapshots).values())
    by_operator: dict[str, list[FleetSnapshot]] = defaultdict(list)
    for snapshot in current:
        by_operator[snapshot.operator].append(snapshot)
    result = {
        operator: _sweep(operator, group) for operator, group in by_operator.items()
    }
    regional = [snapshot for snapshot in current if in_region(snapshot)]
    if regional:
        result[REGION_CODE] = _sweep(REGION_CODE, regional)
    return result


def operator_of_scope(scope: str) -> str | None:
    """The fleet scope a target's scope is measured on; None if there is none.

    `movia` and municipality codes name an operator; `1084` is the whole
    region. Klimapuls holds no national fleet, so `DK` has none.
    """
    return None if scope == DENMARK_CODE else scope


def yearly_shares(shares: Iterable[FleetShare], indicator: str) -> dict[int, YearValue]:
    """The share on the newest date of each year, as a series for share targets.

    Empty fleets have no share, so they leave no point.
    """
    newest: dict[int, FleetShare] = {}
    for share in shares:
        seen = newest.get(share.date.year)
        if seen is None or share.date > seen.date:
            newest[share.date.year] = share
    series: dict[int, YearValue] = {}
    for year, share in sorted(newest.items()):
        value = share.share(indicator)
        if value is not None:
            # Every unit is carried forward, so the sum is complete by design.
            series[year] = YearValue(
                year, value, Coverage(year, share.units, share.units)
            )
    return series


def share_series(
    shares_by_scope: Mapping[str, Iterable[FleetShare]], scope: str, indicator: str
) -> dict[int, YearValue]:
    """The yearly series of a target's scope and indicator (empty if unmeasured)."""
    measured = operator_of_scope(scope)
    if measured is None:
        return {}
    return yearly_shares(shares_by_scope.get(measured, ()), indicator)


def _buses(n: int) -> str:
    return "1 bus" if n == 1 else f"{n} buses"


def fleet_issues(event: Mapping[str, Any]) -> list[FieldIssue]:
    """Domain rules of a schema-valid `fleet_status.v1` event (JSON Schema can't).

    A unit needs a non-blank contract or garage, counts cannot be
    reported before the date they apply to, and listed buses (`bus_ids`)
    must be as many as the counts add up to.
    """
    issues: list[FieldIssue] = []
    if "bus_ids" in event:
        listed, counted = len(event["bus_ids"]), sum(event["buses"].values())
        if listed != counted:
            issues.append(
                FieldIssue(
                    "bus_ids",
                    f"lists {_buses(listed)} but `buses` counts "
                    f"{_buses(counted)}; list every counted bus once",
                )
            )
        if any(not str(bus).strip() for bus in event["bus_ids"]):
            issues.append(FieldIssue("bus_ids", "a bus id is blank"))
    if (
        not (event.get("contract") or "").strip()
        and not (event.get("garage") or "").strip()
    ):
        issues.append(
            FieldIssue("contract", "give at least one of contract, garage (not empty)")
        )
    try:
        reported = datetime.fromisoformat(event["reported_at"]).date()
    except ValueError:
        # RFC 3339 spellings Python cannot parse (say `t` for `T`) passed the
        # schema, and the date is only a plausibility check: let them through.
        return issues
    if date.fromisoformat(event["date"]) > reported:
        issues.append(
            FieldIssue(
                "date",
                f"counts for {event['date']} cannot be reported on "
                f"{reported.isoformat()} (before that date)",
            )
        )
    return issues


def unit_name(unit: UnitKey) -> str:
    """A unit as people name it: `contract/garage`, whichever are given."""
    return "/".join(part for part in unit[1:] if part)


def bus_clash_issue(
    known: Mapping[BusPlace, UnitKey], event: Mapping[str, Any]
) -> FieldIssue | None:
    """Why a `fleet_status.v1` event lists a bus already listed elsewhere, if so.

    `known` holds the unit listing each bus on a date. A bus of the event's
    operator and date listed under another unit would count twice; the same
    unit listing it again is a restatement of its own list.
    """
    snapshot = FleetSnapshot.from_event(event)
    for bus in event.get("bus_ids") or ():
        unit = known.get((snapshot.operator, snapshot.date, bus))
        if unit is not None and unit != snapshot.unit:
            return FieldIssue(
                "bus_ids",
                f"bus {bus!r} of {snapshot.operator!r} is already listed under "
                f"{unit_name(unit)!r} on {snapshot.date.isoformat()}; a bus "
                "belongs to one contract/garage on a date, or it counts twice",
            )
    return None


@dataclass
class BusRegister:
    """Where each listed bus runs on a date: the newest list of every unit.

    The fleet service loads it from `fleet_bus` (and `fleet_status` for the
    ranks) and the offline fold keeps it in memory; both `admit` every new
    fleet report in order, so both refuse the same reports.
    """

    places: dict[BusPlace, UnitKey] = field(default_factory=dict)
    #: The buses each unit lists on a date (its newest report's list).
    lists: dict[FleetSlot, tuple[str, ...]] = field(default_factory=dict)
    #: The newest report's rank of every unit and date seen.
    ranks: dict[FleetSlot, tuple[datetime, str]] = field(default_factory=dict)
    #: The units and dates whose list `admit` changed (storage rewrites them).
    touched: set[FleetSlot] = field(default_factory=set)
    #: The event id of the report holding each unit's list.
    holders: dict[FleetSlot, str] = field(default_factory=dict)

    def know(self, slot: FleetSlot, rank: tuple[datetime, str]) -> None:
        """Record the rank of a stored report of a unit and date."""
        seen = self.ranks.get(slot)
        if seen is None or rank > seen:
            self.ranks[slot] = rank

    def hold(self, slot: FleetSlot, buses: tuple[str, ...], event_id: str) -> None:
        """Make `buses` the list of a unit and date (replacing its old one)."""
        unit, day = slot
        for bus in self.lists.pop(slot, ()):
            del self.places[(unit[0], day, bus)]
        self.holders.pop(slot, None)
        if buses:
            self.lists[slot] = buses
            self.holders[slot] = event_id
        for bus in buses:
            self.places[(unit[0], day, bus)] = unit

    def admit(self, event: Mapping[str, Any]) -> FieldIssue | None:
        """Refuse a report that lists a bus of another unit; else record it.

        A report newer than its unit's known ones replaces the unit's list
        (with none if it lists no ids); an older one changes nothing.
        """
        issue = bus_clash_issue(self.places, event)
        if issue is not None:
            return issue
        snapshot = FleetSnapshot.from_event(event)
        seen = self.ranks.get(snapshot.slot)
        if seen is not None and snapshot.rank < seen:
            return None
        self.ranks[snapshot.slot] = snapshot.rank
        buses = tuple(event.get("bus_ids") or ())
        self.hold(snapshot.slot, buses, snapshot.event_id)
        self.touched.add(snapshot.slot)
        return None
