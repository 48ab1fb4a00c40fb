"""Mobility counts: restatements, modal split and the yearly series of targets.

The rules, used alike by the streaming service and by anyone reading counts
from files:

- A count is identified by its *count key*: (site, mode, direction, interval
  start, interval end). Later events with the same key restate it (late
  corrections: Vejdirektoratet quality-checks a count year until the next
  spring). The current count of a key has the highest `revision`, then the
  latest `reported_at`, then the greatest `event_id` (only a tie-break, so
  every reader picks the same row). Restated counts are kept, never counted.
- Sustainable modes are bike, walk and public transport (bus, train, metro);
  car is the only other mode. The modal split of a year is each mode's share
  of all current counted trips, in percent. Counts from different kinds of
  sites are added as trips: producers send trip counts (expanded survey or
  counter figures), not raw axle passages.
- A count belongs to the hour, day, month and year of its `interval_start` in
  Danish local time (`Europe/Copenhagen`), whatever the interval's length.
- A year counts for targets only when all 12 of its months have counts and
  have ended by the as-of date; a half-counted year would make trip totals
  look like a collapse. A year stays provisional (still open to corrections)
  until 1 June of the next year.
- The region's year counts only when every municipality that counts that
  year covers all 12 months (`modal_splits`), not when their months
  together do.
- Series: `sustainable_trip_share` (%) = 100 * sustainable trips / all trips,
  and `bike_trips` (trips): the first counted year's bike trips, then the
  growth at the sites counted all year in both years (`like_for_like`), so
  a site added mid-series does not make the trend jump. The region
  (`1084`) adds up every municipality; a municipality scope uses its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from klimapuls.core.accounts import YearValue
from klimapuls.core.errors import FieldIssue
from klimapuls.core.model import REGION_CODE, Coverage

__all__ = [
    "BIKE_TRIPS",
    "LOCAL_TIME",
    "MAX_INTERVAL",
    "MODES",
    "PROVISIONAL_UNTIL",
    "PUBLIC_TRANSPORT_MODES",
    "RANK_FIELDS",
    "SUSTAINABLE_MODES",
    "SUSTAINABLE_TRIP_SHARE",
    "CountKey",
    "MobilityCount",
    "ModalSplit",
    "SiteYear",
    "YearTrips",
    "current_counts",
    "ended_months",
    "like_for_like",
    "local_month",
    "mobility_issues",
    "mobility_series",
    "modal_split",
    "modal_splits",
    "months_in",
    "parse_moment",
    "restated_counts",
    "site_years",
    "wins_over",
    "year_totals",
    "yearly_trips",
]

#: Every transport mode a count can carry.
MODES: tuple[str, ...] = ("car", "bike", "walk", "bus", "train", "metro")
#: Public transport: the "public 11 %" of the 2021-22 regional split.
PUBLIC_TRANSPORT_MODES: frozenset[str] = frozenset({"bus", "train", "metro"})
#: Modes that count towards `sustainable-trips-2035` (2/3 of trips by 2035).
SUSTAINABLE_MODES: frozenset[str] = frozenset({"bike", "walk"}) | (
    PUBLIC_TRANSPORT_MODES
)
#: Indicator names (see `klimapuls.core.model.INDICATOR_UNITS`).
SUSTAINABLE_TRIP_SHARE = "sustainable_trip_share"
BIKE_TRIPS = "bike_trips"
#: Buckets (day, month, year) are Danish local time.
LOCAL_TIME = ZoneInfo("Europe/Copenhagen")
#: (month, day) of the next year from which a count year is final.
PROVISIONAL_UNTIL = (6, 1)
#: The longest interval one count may cover (a yearly survey figure).
MAX_INTERVAL = timedelta(days=366)
_ALL_MONTHS = (1 << 12) - 1

CountKey = tuple[str, str, str, datetime, datetime]  # site, mode, direction, start, end


def parse_moment(text: str) -> datetime:
    """An RFC 3339 date-time (any case of `T`/`Z`) as an aware datetime.

    Remembered by text: validation, the horizon rules and
    `MobilityCount.from_event` read the same three strings of every count,
    and the counts of one hour share their interval's.
    """
    if type(text) is str:
        return _parse_text(text)
    return datetime.fromisoformat(text.upper())


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> datetime:
    # A datetime is immutable, so every caller may share one.
    return datetime.fromisoformat(text.upper())


def mobility_issues(event: Mapping[str, Any]) -> list[FieldIssue]:
    """Domain rules of a schema-valid `mobility_count.v1` event.

    Instants are compared as instants (offsets differ between producers),
    not as strings.
    """
    moments: dict[str, datetime] = {}
    issues: list[FieldIssue] = []
    for name in ("reported_at", "interval_start", "interval_end"):
        try:
            moments[name] = parse_moment(event[name])
        except ValueError:
            issues.append(FieldIssue(name, "cannot be read as a date-time"))
    if issues:
        return issues
    start, end = moments["interval_start"], moments["interval_end"]
    if end <= start:
        issues.append(FieldIssue("interval_end", "must be after interval_start"))
    elif end - start > MAX_INTERVAL:
        issues.append(
            FieldIssue("interval_end", "an interval may cover at most 366 days")
        )
    if start >= moments["reported_at"]:
        issues.append(
            FieldIssue(
                "interval_start",
                "the interval had not begun when the count was reported (reported_at)",
            )
        )
    return issues


@dataclass(frozen=True)
class MobilityCount:
    """One count event: trips of a mode at a site or on a line in an interval."""

    event_id: str
    site_id: str
    municipality_code: str
    mode: str
    direction: str
    interval_start: datetime
    interval_end: datetime
    count: int
    reported_at: datetime
    revision: int = 0
    delay_hours: float | None = None
    site_kind: str | None = None
    producer: str = field(default="", compare=False)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> MobilityCount:
        """Build from a validated `mobility_count.v1` event."""
        delay = event.get("delay_hours")
        # Every field set at once, past `__init__`: a frozen dataclass's own
        # sets them one by one through `object.__setattr__`, which took as
        # long as all the rest here (a count is built per event). A test
        # holds this to the fields and to what `__init__` makes.
        count = object.__new__(cls)
        count.__dict__.update(
            event_id=event["event_id"],
            site_id=event["site_id"],
            municipality_code=event["municipality_code"],
            mode=event["mode"],
            direction=event["direction"],
            interval_start=parse_moment(event["interval_start"]),
            interval_end=parse_moment(event["interval_end"]),
            count=int(event["count"]),
            reported_at=parse_moment(event["reported_at"]),
            revision=int(event.get("revision") or 0),
            delay_hours=None if delay is None else float(delay),
            site_kind=event.get("site_kind"),
            producer=event.get("producer") or "",
        )
        return count

    @property
    def key(self) -> CountKey:
        """The count key: events with the same key restate each other."""
        return (
            self.site_id,
            self.mode,
            self.direction,
            self.interval_start,
            self.interval_end,
        )

    @property
    def slot(self) -> CountKey:
        """What this count competes for: its count key."""
        return self.key

    @property
    def rank(self) -> tuple[int, datetime, str]:
        """Order of restatements: the highest rank is the current count."""
        return (self.revision, self.reported_at, self.event_id)


#: The fields of `MobilityCount.rank`, most significant first: a reader that
#: picks the current count itself (SQL) orders by these, descending.
RANK_FIELDS: tuple[str, ...] = ("revision", "reported_at", "event_id")


def wins_over(
    candidate: tuple[int, datetime, str], current: tuple[int, datetime, str]
) -> bool:
    """Whether a count of rank `candidate` restates one of rank `current`."""
    return candidate > current


def current_counts(counts: Iterable[MobilityCount]) -> dict[CountKey, MobilityCount]:
    """The current count of every count key (restated ones dropped)."""
    best: dict[CountKey, MobilityCount] = {}
    for count in counts:
        seen = best.get(count.key)
        if seen is None or wins_over(count.rank, seen.rank):
            best[count.key] = count
    return best


def restated_counts(counts: Iterable[MobilityCount]) -> list[MobilityCount]:
    """Every count of a count key reported more than once."""
    by_key: dict[CountKey, list[MobilityCount]] = defaultdict(list)
    for count in counts:
        by_key[count.key].append(count)
    return [c for group in by_key.values() if len(group) > 1 for c in group]


def local_month(moment: datetime) -> tuple[int, int]:
    """(year, month) of `moment` in Danish local time."""
    local = moment.astimezone(LOCAL_TIME)
    return local.year, local.month


def months_in(mask: int) -> int:
    """How many months a month mask (bit m-1 set for month m) holds."""
    return bin(mask & _ALL_MONTHS).count("1")


def ended_months(year: int, as_of: date) -> int:
    """Mask of the months of `year` that have ended by `as_of`."""
    if year < as_of.year:
        return _ALL_MONTHS
    if year > as_of.year:
        return 0
    return (1 << (as_of.month - 1)) - 1


@dataclass(frozen=True)
class YearTrips:
    """Current trips of one mode in one municipality and year (a yearly rollup)."""

    year: int
    municipality_code: str
    mode: str
    trips: int
    month_mask: int


@dataclass(frozen=True)
class SiteYear:
    """Current trips of one mode at one site in one local year, with its months."""

    year: int
    municipality_code: str
    site_id: str
    mode: str
    trips: int
    month_mask: int

    @property
    def full(self) -> bool:
        """Whether the site has counts in all 12 months of the year."""
        return self.month_mask & _ALL_MONTHS == _ALL_MONTHS


def site_years(counts: Iterable[MobilityCount]) -> list[SiteYear]:
    """Current trips per local year, site and mode, with counted months.

    Restated counts dropped, each count in the local month of its
    `interval_start` (the same as the database's hourly rollup, per site).
    """
    trips: dict[tuple[int, str, str, str], int] = defaultdict(int)
    masks: dict[tuple[int, str, str, str], int] = defaultdict(int)
    for count in current_counts(counts).values():
        year, month = local_month(count.interval_start)
        key = (year, count.municipality_code, count.site_id, count.mode)
        trips[key] += count.count
        masks[key] |= 1 << (month - 1)
    return [SiteYear(*key, trips[key], masks[key]) for key in sorted(trips)]


def year_totals(sites: Iterable[SiteYear]) -> list[YearTrips]:
    """The yearly rollup (municipality and mode) of per-site years."""
    trips: dict[tuple[int, str, str], int] = defaultdict(int)
    masks: dict[tuple[int, str, str], int] = defaultdict(int)
    for site in sites:
        key = (site.year, site.municipality_code, site.mode)
        trips[key] += site.trips
        masks[key] |= site.month_mask
    return [YearTrips(*key, trips[key], masks[key]) for key in sorted(trips)]


def yearly_trips(counts: Iterable[MobilityCount]) -> list[YearTrips]:
    """Current trips per local year, municipality and mode, with counted months.

    The same figures as the database's rollups (`mobility_yearly`), computed
    from count events: restated counts dropped, each count in the local
    month of its `interval_start`.
    """
    return year_totals(site_years(counts))


def modal_split(trips_by_mode: Mapping[str, int]) -> dict[str, float]:
    """Each mode's share of all trips, in percent; empty when there are none."""
    total = sum(trips_by_mode.values())
    if total <= 0:
        return {}
    return {mode: 100 * trips / total for mode, trips in trips_by_mode.items()}


@dataclass(frozen=True)
class ModalSplit:
    """The modal split of a scope (municipality or region) in one year."""

    scope: str
    year: int
    trips: Mapping[str, int]
    shares: Mapping[str, float]
    month_mask: int
    months_covered: int
    counted: bool
    provisional: bool

    @property
    def total_trips(self) -> int:
        """All trips of the year."""
        return sum(self.trips.values())

    @property
    def sustainable_trips(self) -> int:
        """Trips by bike, on foot or by public transport."""
        return sum(t for mode, t in self.trips.items() if mode in SUSTAINABLE_MODES)

    @property
    def sustainable_share(self) -> float | None:
        """Sustainable trips in percent of all trips (None without trips)."""
        total = self.total_trips
        return 100 * self.sustainable_trips / total if total > 0 else None

    @property
    def bike_trips(self) -> int:
        """Trips by bike."""
        return self.trips.get("bike", 0)


def _is_provisional(year: int, as_of: date) -> bool:
    month, day = PROVISIONAL_UNTIL
    return as_of < date(year + 1, month, day)


def modal_splits(rows: Iterable[YearTrips], as_of: date) -> list[ModalSplit]:
    """Modal split per year for the region and for every municipality in `rows`.

    A municipality's months are those it has counts in (any mode). The
    region's months are those *every* municipality counting that year has
    counts in: its year counts only when each of them covers all 12 months,
    not when their months together do (one counting January, another the
    rest of the year is not a counted year).
    """
    trips: dict[tuple[str, int], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(MODES, 0)
    )
    masks: dict[tuple[str, int], int] = defaultdict(int)
    for row in rows:
        for scope in (row.municipality_code, REGION_CODE):
            trips[(scope, row.year)][row.mode] += row.trips
        masks[(row.municipality_code, row.year)] |= row.month_mask
    for scope, year in list(trips):
        if scope == REGION_CODE:
            masks[(scope, year)] = _common_months(
                mask for (code, y), mask in masks.items() if y == year
            )
    result = []
    for (scope, year), by_mode in sorted(trips.items()):
        covered = masks[(scope, year)] & ended_months(year, as_of)
        result.append(
            ModalSplit(
                scope=scope,
                year=year,
                trips=by_mode,
                shares=modal_split(by_mode),
                month_mask=masks[(scope, year)],
                months_covered=months_in(covered),
                counted=covered == _ALL_MONTHS,
                provisional=_is_provisional(year, as_of),
            )
        )
    return result


def _common_months(masks: Iterable[int]) -> int:
    """The months all of `masks` hold (none when there are no masks)."""
    common = _ALL_MONTHS
    seen = False
    for mask in masks:
        common &= mask
        seen = True
    return common if seen else 0


def _in_scope(site: SiteYear, scope: str) -> bool:
    return scope == REGION_CODE or site.municipality_code == scope


def like_for_like(
    counted: Iterable[ModalSplit], sites: Iterable[SiteYear], scope: str
) -> dict[int, float]:
    """Bike trips of the counted years, compared like with like.

    The first counted year is its bike trips as counted. Each later counted
    year is the previous value times the growth at the sites that counted
    bikes in all 12 months of *both* years (a chain index in trips), so a
    site added or dropped mid-series does not make the series jump. A year
    with no such site (or none with trips the year before) has no
    comparable value and is left out; the next year compares with the last
    year that had one.
    """
    full: dict[int, dict[str, int]] = defaultdict(dict)
    for site in sites:
        if site.mode == "bike" and site.full and _in_scope(site, scope):
            full[site.year][site.site_id] = site.trips
    values: dict[int, float] = {}
    previous: int | None = None
    for split in sorted(counted, key=lambda s: s.year):
        if previous is None:
            values[split.year] = float(split.bike_trips)
            previous = split.year
            continue
        common = sorted(full[previous].keys() & full[split.year].keys())
        before = sum(full[previous][site] for site in common)
        if before <= 0:
            continue
        after = sum(full[split.year][site] for site in common)
        values[split.year] = values[previous] * after / before
        previous = split.year
    return values


def mobility_series(
    splits: Iterable[ModalSplit],
    scope: str,
    indicator: str,
    sites: Iterable[SiteYear] = (),
) -> dict[int, YearValue]:
    """The yearly series of `indicator` for `scope`, for `core.targets.evaluate`.

    Coverage counts months: a year is counted when all 12 have counts and
    have ended. Scopes without counts (`DK`, `movia`) get an empty series.
    Bike trips of counted years compare like with like (`like_for_like`,
    from the per-site years in `sites`); a year not counted shows its bike
    trips as counted so far.
    """
    own = [split for split in splits if split.scope == scope]
    chained: dict[int, float] = {}
    if indicator == BIKE_TRIPS:
        chained = like_for_like((s for s in own if s.counted), sites, scope)
    series: dict[int, YearValue] = {}
    for split in own:
        value: float | None
        if indicator == SUSTAINABLE_TRIP_SHARE:
            value = split.sustainable_share
        elif indicator == BIKE_TRIPS:
            value = chained.get(split.year) if split.counted else split.bike_trips
        else:
            raise ValueError(f"{indicator!r} is not a mobility indicator")
        if value is None:
            continue
        series[split.year] = YearValue(
            split.year, float(value), Coverage(split.year, split.months_covered, 12)
        )
    return dict(sorted(series.items()))
