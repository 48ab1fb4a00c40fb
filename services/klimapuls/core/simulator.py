"""A seeded, realistic, synthetic event stream of every family, for demos and load.

The meeting papers give no per-municipality figures, bus counts or traffic
counts, so everything here is made up, reproducibly, around the public facts
of the domain brief, and labelled synthetic (`producer` is
`SIMULATOR_PRODUCER`; CO2 accounts carry `synthetic` in `source`):

- **CO2 accounts**: `synthetic.co2_demo` (all 29 municipalities, reporting
  lag, restatements), in release order (by vintage).
- **Bus fleet**: month-end snapshots per garage. Movia's totals follow the
  public figures, interpolated: end 2022 39 % fossil-free and 25 % electric
  or hydrogen; April 2025 593 electric buses, 53 % of ~1,120; fossil-free by
  2030. The first zero-emission orders (Roskilde, København, Frederiksberg,
  Ballerup, Egedal) electrify first; one garage runs the hydrogen trial;
  Bornholm's own operator reports too. A few snapshots are restated.
- **Mobility counts**: hourly counts from counting sites in every
  municipality (road, bike, pedestrian, bus line, station), with morning and
  evening peaks on weekdays, a weekend dip, rainy days for bikes, and a
  regional mode mix near the 2021-22 split (car 44 %, bike 21 %, walk 24 %,
  public 11 %). A few counts are restated later with a higher `revision`.
  Mobility counts advance the simulated clock, one hour at a time.
- **Initiative status**: the October 2022 and 2023 rounds as in the status
  table, then synthetic rounds (completions, delays, a tovholder hand-over,
  Klimaalliancen sharing the role); the VIP climate projects from 2020.
- **Targets**: the seed targets (same event ids as the seed data).
- **Malformed events**: a small share, each with the field a validator must
  name (unknown municipality, negative count, missing field, not JSON).

Every event id is derived from the seed and the fact, so sending the same
stream twice stores nothing new. Pacing (events per second) is the caller's
job; `simulate` yields as fast as it is asked.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from heapq import heappop, heappush
from importlib import resources
from itertools import count, islice, pairwise
from typing import Any
from zoneinfo import ZoneInfo

from klimapuls.core.deadletter import dead_letter_id
from klimapuls.core.initiatives import (
    PROGRAMME_CLIMATE,
    PROGRAMME_INFRASTRUCTURE,
    REGION_TOVHOLDER,
    SECRETARIAT_TOVHOLDER,
    Initiative,
    initiative_id,
    reference_initiatives,
)
from klimapuls.core.reference import municipality_codes, seed_target_events
from klimapuls.core.synthetic import (
    INHABITANTS_THOUSANDS,
    MALFORMED_DEFECTS,
    co2_demo,
)

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_START",
    "MIX",
    "SIMULATOR_PRODUCER",
    "CountingSite",
    "SimulatedEvent",
    "co2_events",
    "counting_sites",
    "demo_events",
    "fleet_events",
    "ids_by_kind",
    "initiative_events",
    "kind_counts",
    "malformed_events",
    "mobility_events",
    "movia_fleet",
    "simulate",
]

SIMULATOR_PRODUCER = "klimapuls-simulator (synthetic)"
DEFAULT_SEED = 2045
#: A Monday in the domain's present: accounts up to 2025 are out by then.
DEFAULT_START = date(2026, 6, 1)
#: Share of each source in the stream, per 1,000 events, while it lasts.
MIX: dict[str, int] = {
    "mobility_count": 800,
    "co2_account": 120,
    "fleet_status": 40,
    "initiative_status": 20,
    "target": 10,
    "malformed": 10,
}

_LOCAL = ZoneInfo("Europe/Copenhagen")
_NOTE = "synthetic (Klimapuls simulator, not real figures)"


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    """One simulated message: a valid event, or a malformed body and its defect.

    `body` is the event (a dict) or, for a malformed message, the raw bytes to
    send as is; `defect` names the field validation rejects (`$` for a body
    that is not JSON).
    """

    kind: str
    body: dict[str, Any] | bytes
    defect: str | None = None

    @property
    def malformed(self) -> bool:
        """True for a body meant to be rejected and dead-lettered."""
        return isinstance(self.body, bytes)

    @property
    def event_id(self) -> str | None:
        """The event id of a valid event (None for malformed bodies)."""
        return None if isinstance(self.body, bytes) else str(self.body["event_id"])

    @property
    def dead_letter_id(self) -> str | None:
        """The id a service gives the dead letter of a malformed body."""
        if not isinstance(self.body, bytes):
            return None
        return dead_letter_id(self.kind, self.body)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# --- CO2 accounts -------------------------------------------------------------


def _latest_account_year(start: date) -> int:
    # The account for year Y is released in May of Y+1 (co2_demo's vintages).
    return start.year - 1 if start >= date(start.year, 5, 1) else start.year - 2


def co2_events(seed: int, start: date) -> list[SimulatedEvent]:
    """The synthetic CO2 accounts released by `start`, in release order."""
    demo = co2_demo(seed=seed, latest_year=_latest_account_year(start))
    ordered = sorted(
        demo.events,
        key=lambda e: (e["vintage"], e["municipality_code"], e["year"], e["sector"]),
    )
    return [SimulatedEvent("co2_account", e) for e in ordered]


# --- Bus fleet ----------------------------------------------------------------


@dataclass(frozen=True)
class _Garage:
    name: str
    municipality_code: str | None
    size: float  # relative size
    lead: float  # how early it electrifies (first zero-emission orders: high)
    biogas: bool = False
    hydrogen: bool = False
    hybrids: bool = False


# Synthetic garages; Movia also serves Region Sjælland (no municipality code).
_MOVIA_GARAGES: tuple[_Garage, ...] = (
    _Garage("Sydhavnen", "101", 90, 2.0),
    _Garage("Nordvest", "101", 80, 1.8),
    _Garage("Amager", "185", 70, 1.3),
    _Garage("Frederiksberg", "147", 55, 2.0),
    _Garage("Ballerup", "151", 70, 2.0),
    _Garage("Stenløse", "240", 40, 2.0),
    _Garage("Gladsaxe", "159", 60, 1.2),
    _Garage("Glostrup", "161", 55, 1.0, hybrids=True),
    _Garage("Hvidovre", "167", 60, 1.1),
    _Garage("Lyngby", "173", 50, 1.0),
    _Garage("Høje-Taastrup", "169", 45, 0.8),
    _Garage("Hillerød", "219", 45, 0.7, hydrogen=True),
    _Garage("Helsingør", "217", 40, 0.6),
    _Garage("Frederikssund", "250", 35, 0.6),
    _Garage("Roskilde", None, 60, 2.0),
    _Garage("Køge", None, 55, 0.6, biogas=True),
    _Garage("Holbæk", None, 50, 0.5, biogas=True),
    _Garage("Næstved", None, 55, 0.5, biogas=True),
    _Garage("Slagelse", None, 45, 0.4, hybrids=True),
    _Garage("Nykøbing Falster", None, 40, 0.3),
)

# Movia's fleet: (date, buses, battery-electric, hydrogen, fossil-free).
# 2022-12-31 and 2025-04-30 are the public figures; the rest is assumed.
_MOVIA_ANCHORS: tuple[tuple[date, int, int, int, int], ...] = (
    (date(2018, 12, 31), 1180, 30, 0, 212),
    (date(2020, 12, 31), 1170, 120, 5, 328),
    (date(2022, 12, 31), 1150, 283, 5, 449),  # 25 % ZE, 39 % fossil-free
    (date(2025, 4, 30), 1119, 593, 5, 761),  # 593 electric = 53 %
    (date(2029, 12, 31), 1150, 920, 10, 1150),  # fossil-free by 2030
)
# Bornholm's own bus operator (municipality 400), assumed:
# (date, buses, battery-electric, fossil-free), the rest of them on HVO.
_BORNHOLM_ANCHORS: tuple[tuple[date, int, int, int], ...] = (
    (date(2018, 12, 31), 32, 0, 0),
    (date(2021, 6, 30), 32, 0, 32),
    (date(2023, 6, 30), 31, 2, 31),
    (date(2024, 6, 30), 31, 26, 31),
    (date(2029, 12, 31), 31, 31, 31),
)
_FLEET_FROM = date(2019, 1, 31)


def _interpolate(anchors: Iterable[tuple[Any, ...]], on: date) -> tuple[int, ...]:
    points = list(anchors)
    if on <= points[0][0]:
        return tuple(points[0][1:])
    for (d0, *v0), (d1, *v1) in pairwise(points):
        if on <= d1:
            w = (on - d0).days / (d1 - d0).days
            return tuple(round(a + (b - a) * w) for a, b in zip(v0, v1, strict=True))
    return tuple(points[-1][1:])


def movia_fleet(on: date) -> dict[str, int]:
    """Movia's whole fleet on `on`: buses, battery_electric, hydrogen, fossil_free."""
    total, electric, hydrogen, fossil_free = _interpolate(_MOVIA_ANCHORS, on)
    return {
        "buses": total,
        "battery_electric": electric,
        "hydrogen": hydrogen,
        "fossil_free": fossil_free,
    }


def _allocate(total: int, weights: list[float], caps: list[int]) -> list[int]:
    """Share `total` out by weight without passing caps (water-filling).

    Whole numbers summing to `total` (or to the caps, if they hold less);
    leftover units go to the largest remainders.
    """
    alloc = [0.0] * len(weights)
    active = {i for i, w in enumerate(weights) if w > 0 and caps[i] > 0}
    remaining = float(min(total, sum(caps)))
    while active and remaining > 1e-9:
        weight = sum(weights[i] for i in active)
        full = [
            i for i in active if alloc[i] + remaining * weights[i] / weight >= caps[i]
        ]
        if not full:
            for i in active:
                alloc[i] += remaining * weights[i] / weight
            break
        for i in full:
            remaining -= caps[i] - alloc[i]
            alloc[i] = float(caps[i])
            active.discard(i)
    whole = [math.floor(a + 1e-9) for a in alloc]
    short = min(total, sum(caps)) - sum(whole)
    order = sorted(
        (i for i in range(len(alloc)) if whole[i] < caps[i]),
        key=lambda i: (-(alloc[i] - whole[i]), i),
    )
    for i in order[:short]:
        whole[i] += 1
    return whole


def _movia_garage_counts(on: date) -> list[dict[str, int]]:
    """Each Movia garage's buses by propulsion on `on`; sums to `movia_fleet`."""
    fleet = movia_fleet(on)
    garages = _MOVIA_GARAGES
    big = [10_000] * len(garages)
    sizes = _allocate(fleet["buses"], [g.size for g in garages], big)
    hydrogen = _allocate(
        fleet["hydrogen"], [1.0 if g.hydrogen else 0.0 for g in garages], sizes
    )
    room = [s - h for s, h in zip(sizes, hydrogen, strict=True)]
    electric = _allocate(
        fleet["battery_electric"], [g.size * g.lead**2 for g in garages], room
    )
    zero = [h + e for h, e in zip(hydrogen, electric, strict=True)]
    room = [s - z for s, z in zip(sizes, zero, strict=True)]
    biofuel = _allocate(
        fleet["fossil_free"] - fleet["battery_electric"] - fleet["hydrogen"],
        [r * (3.0 if g.biogas else 1.0) for r, g in zip(room, garages, strict=True)],
        room,
    )
    result = []
    for g, size, h2, el, bio in zip(
        garages, sizes, hydrogen, electric, biofuel, strict=True
    ):
        fossil = size - h2 - el - bio
        hybrid = fossil // 4 if g.hybrids else 0
        result.append(
            {
                "diesel": fossil - hybrid,
                "hvo": 0 if g.biogas else bio,
                "biogas": bio if g.biogas else 0,
                "battery_electric": el,
                "hydrogen": h2,
                "hybrid": hybrid,
            }
        )
    return result


def _month_ends(first: date, last: date) -> Iterator[date]:
    year, month = first.year, first.month
    while True:
        following = date(year + month // 12, month % 12 + 1, 1)
        day = following - timedelta(days=1)
        if day > last:
            return
        yield day
        year, month = following.year, following.month


def _fleet_event(
    seed: int,
    operator: str,
    garage: str,
    code: str | None,
    on: date,
    buses: dict[str, int],
    reported: datetime,
    revision: int,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "schema": "fleet_status.v1",
        "event_id": (
            f"sim-{seed}:fleet:{operator}:{initiative_id(garage)}:{on}:r{revision}"
        ),
        "producer": SIMULATOR_PRODUCER,
        "reported_at": _iso(reported),
        "operator": operator,
        "garage": garage,
        "date": on.isoformat(),
        "buses": {k: v for k, v in buses.items() if v or k == "diesel"},
    }
    if code is not None:
        event["municipality_code"] = code
    return event


def fleet_events(seed: int, start: date) -> list[SimulatedEvent]:
    """Month-end snapshots of every garage up to `start`, by report time.

    About 3 % of snapshots are first reported wrongly and restated (a newer
    `reported_at`, the true counts) a week or two later.
    """
    rng = random.Random(f"{seed}:fleet")  # noqa: S311 - reproducible demo data
    events: list[dict[str, Any]] = []
    for on in _month_ends(_FLEET_FROM, start - timedelta(days=1)):
        reported = datetime.combine(
            on + timedelta(days=rng.randint(1, 6)), time(8), tzinfo=UTC
        )
        units: list[tuple[str, str, str | None, dict[str, int]]] = [
            ("movia", g.name, g.municipality_code, counts)
            for g, counts in zip(_MOVIA_GARAGES, _movia_garage_counts(on), strict=True)
        ]
        total, electric, fossil_free = _interpolate(_BORNHOLM_ANCHORS, on)
        fossil_free = min(fossil_free, total)
        electric = min(electric, fossil_free)
        units.append(
            (
                "400",
                "Rønne",
                "400",
                {
                    "diesel": total - fossil_free,
                    "hvo": fossil_free - electric,
                    "battery_electric": electric,
                },
            )
        )
        for operator, garage, code, counts in units:
            if rng.random() < 0.03:
                wrong = dict(counts)
                wrong["diesel"] = wrong["diesel"] + rng.choice((-2, -1, 1, 2, 3))
                wrong["diesel"] = max(wrong["diesel"], 0)
                events.append(
                    _fleet_event(seed, operator, garage, code, on, wrong, reported, 0)
                )
                later = reported + timedelta(days=rng.randint(7, 15))
                events.append(
                    _fleet_event(seed, operator, garage, code, on, counts, later, 1)
                )
            else:
                events.append(
                    _fleet_event(seed, operator, garage, code, on, counts, reported, 0)
                )
    events.sort(key=lambda e: (e["reported_at"], e["event_id"]))
    return [SimulatedEvent("fleet_status", e) for e in events]


# --- Initiative status --------------------------------------------------------

_STATUS_CELL = {"Modtaget": "received", "Ja": "confirmed"}
_HANDOVER = {
    # Southern Ring 4 passes from Høje-Taastrup to Ishøj (domain brief).
    initiative_id("Udvidelse af Motorring 4 ved København (sydlig)"): (
        ("Ishøj",),
        date(2024, 6, 1),
    ),
}


@cache
def _status_table() -> dict[str, tuple[str, str]]:
    """October 2022 / 2023 status cells of the infrastructure table, by id."""
    text = (
        resources.files("klimapuls.core")
        .joinpath("data", "vip_infrastructure_status.csv")
        .read_text("utf-8")
    )
    return {
        initiative_id(row["project"]): (row["status_oct_2022"], row["status_oct_2023"])
        for row in csv.DictReader(io.StringIO(text))
    }


def _rounds(first_year: int, start: date) -> list[str]:
    return [
        f"{y}-10" for y in range(first_year, start.year + 1) if date(y, 10, 1) <= start
    ]


def _initiative_event(
    seed: int,
    item: Initiative,
    round_: str,
    status: str,
    tovholdere: tuple[str, ...],
    reported: datetime,
    revision: int,
    effective: date | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "schema": "initiative_status.v1",
        "event_id": f"sim-{seed}:initiative:{item.initiative_id}:{round_}:r{revision}",
        "producer": SIMULATOR_PRODUCER,
        "reported_at": _iso(reported),
        "initiative_id": item.initiative_id,
        "initiative_name": item.name,
        "group": item.group,
        "programme": item.programme,
        "round": round_,
        "status": status,
        "tovholdere": list(tovholdere),
        "note": _NOTE,
    }
    if item.estimate_dkk_m is not None:
        event["estimate_dkk_m"] = item.estimate_dkk_m
    if effective is not None:
        event["effective_date"] = effective.isoformat()
    return event


def _synthetic_status(rng: random.Random, item: Initiative, year: int) -> str | None:
    """A plausible status in a synthetic round; None means no report (missing)."""
    if rng.random() < 0.08:
        return None
    if item.year is not None and item.year < year and rng.random() < 0.5:
        return "completed"
    if item.year is not None and item.year > year + 2 and rng.random() < 0.3:
        return "not_started"
    return rng.choices(
        ("on_track", "delayed", "confirmed", "stopped"), (60, 20, 18, 2)
    )[0]


def _climate_status(item: Initiative, year: int, rng: random.Random) -> str | None:
    continues = (item.note or "").removeprefix(
        "continues in Klimaalliancen from 2024: "
    )
    if year <= 2022:
        return rng.choices(("on_track", "delayed"), (80, 20))[0]
    if year == 2023:
        return "completed" if continues.startswith("no") else "on_track"
    if continues.startswith("no"):
        return None  # closed: no longer expected
    return "delayed" if continues == "undecided" else "on_track"


def initiative_events(seed: int, start: date) -> list[SimulatedEvent]:
    """Status reports of the reference initiatives in every round up to `start`."""
    rng = random.Random(f"{seed}:initiatives")  # noqa: S311 - reproducible demo data
    table = _status_table()
    events: list[dict[str, Any]] = []
    for item in reference_initiatives():
        tovholdere = item.tovholdere
        closed = False
        first = 2020 if item.programme == PROGRAMME_CLIMATE else 2022
        for round_ in _rounds(first, start):
            year = int(round_[:4])
            effective: date | None = None
            if closed:
                break
            if item.programme == PROGRAMME_INFRASTRUCTURE and year <= 2023:
                cell = table.get(item.initiative_id, ("", ""))[year - 2022]
                status = _STATUS_CELL.get(cell)
            elif item.programme == PROGRAMME_INFRASTRUCTURE:
                status = _synthetic_status(rng, item, year)
                if item.initiative_id in _HANDOVER and year == 2024:
                    tovholdere, effective = _HANDOVER[item.initiative_id]
                if not tovholdere and rng.random() < 0.2:
                    tovholdere = (REGION_TOVHOLDER,)  # a tovholder is attached
            else:
                status = _climate_status(item, year, rng)
                if year >= 2024 and SECRETARIAT_TOVHOLDER not in tovholdere:
                    # The Klimaalliancen secretariat shares the role from 2024.
                    tovholdere = (*tovholdere, SECRETARIAT_TOVHOLDER)
                    effective = date(2024, 1, 1)
            if status is None:
                continue
            closed = status in ("completed", "stopped")
            reported = datetime.combine(
                date(year, 10, 1) + timedelta(days=rng.randint(5, 25)),
                time(10),
                tzinfo=UTC,
            )
            first_status = status
            if status == "confirmed" and rng.random() < 0.1:
                first_status = "received"  # confirmed a week later: a restatement
            events.append(
                _initiative_event(
                    seed, item, round_, first_status, tovholdere, reported, 0, effective
                )
            )
            if first_status != status:
                events.append(
                    _initiative_event(
                        seed,
                        item,
                        round_,
                        status,
                        tovholdere,
                        reported + timedelta(days=7),
                        1,
                        effective,
                    )
                )
    events.sort(key=lambda e: (e["reported_at"], e["event_id"]))
    return [
        SimulatedEvent("initiative_status", e)
        for e in events
        if datetime.fromisoformat(e["reported_at"]).date() <= start
    ]


# --- Mobility counts ----------------------------------------------------------

# Regional mode split 2021-22 (domain brief); public transport is split into
# bus, train and metro where a municipality has them.
_SPLIT = {"car": 0.44, "bike": 0.21, "walk": 0.24, "public": 0.11}
_PUBLIC = {"bus": 0.5, "train": 0.35, "metro": 0.15}
# How urban a municipality is (0 rural .. 1 inner city): more bikes and
# walking, fewer cars in the city.
_URBAN = {"101": 1.0, "147": 0.95, "157": 0.7, "185": 0.65, "159": 0.6, "167": 0.6}
_URBAN_DEFAULT = 0.4
_RURAL = {"400": 0.05, "270": 0.1, "260": 0.1, "250": 0.15, "155": 0.3}
_METRO = frozenset({"101", "147", "185"})
_NO_TRAIN = frozenset({"155", "400"})
_COUNTED_PER_THOUSAND = 220.0  # counted passages per inhabitant-thousand and day

# Weekday and weekend hourly profiles, hours 0-23 (relative; normalised below).
_WEEKDAY = {
    "car": (2, 1, 1, 1, 2, 5, 12, 19, 16, 10, 9, 9,
            10, 10, 12, 16, 19, 17, 12, 9, 7, 5, 4, 3),
    "bike": (1, 0.5, 0.3, 0.3, 0.5, 2, 9, 22, 17, 7, 5, 5,
             6, 6, 8, 13, 19, 15, 9, 6, 4, 3, 2, 1),
    "walk": (1, 0.5, 0.3, 0.3, 0.5, 1.5, 4, 9, 9, 8, 9, 11,
             13, 12, 11, 12, 13, 12, 10, 8, 6, 4, 3, 2),
    "public": (1, 0.5, 0.3, 0.3, 1, 4, 11, 20, 15, 8, 6, 6,
               6, 7, 9, 14, 18, 14, 8, 6, 4, 3, 2, 1.5),
}  # fmt: skip
_WEEKEND = {
    "car": (4, 3, 2, 1, 1, 2, 3, 5, 8, 11, 13, 14,
            14, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4),
    "bike": (2, 1, 0.5, 0.3, 0.3, 0.5, 1, 3, 6, 9, 12, 13,
             13, 13, 12, 11, 9, 7, 5, 4, 3, 2, 2, 1),
    "walk": (2, 1.5, 1, 0.5, 0.3, 0.5, 1, 3, 6, 9, 12, 14,
             15, 15, 14, 13, 11, 9, 7, 5, 4, 3, 3, 2),
    "public": (3, 2, 1, 0.5, 0.5, 1, 2, 4, 6, 8, 10, 11,
               11, 11, 11, 10, 9, 8, 7, 6, 5, 4, 3, 3),
}  # fmt: skip
# A weekend day's volume relative to a weekday's (the weekend dip).
_WEEKEND_LEVEL = {"car": 0.78, "bike": 0.55, "walk": 0.9, "public": 0.6}
_SUNDAY = 0.88


def _normalised(profile: tuple[float, ...]) -> tuple[float, ...]:
    total = sum(profile)
    return tuple(p / total for p in profile)


_PROFILES = {
    (mode, weekend): _normalised((_WEEKEND if weekend else _WEEKDAY)[mode])
    for mode in _SPLIT
    for weekend in (False, True)
}


@dataclass(frozen=True)
class CountingSite:
    """A synthetic counting site or line and its weekday volume per direction."""

    site_id: str
    site_kind: str
    municipality_code: str
    mode: str
    directions: tuple[str, ...]
    weekday_volume: float  # passages per weekday and direction


def _urban(code: str) -> float:
    return _RURAL.get(code, _URBAN.get(code, _URBAN_DEFAULT))


def _preference(mode: str, urban: float) -> float:
    # Relative use of a mode by urbanity, rescaled to the regional split below.
    return {
        "car": 1.5 - urban,
        "bike": 0.4 + urban,
        "walk": 0.7 + 0.5 * urban,
        "public": 0.5 + urban,
    }[mode]


@cache
def counting_sites() -> tuple[CountingSite, ...]:
    """Every synthetic counting site, at least five in each municipality.

    Volumes are sized by inhabitants and urbanity and scaled so the region's
    weekday totals by mode match the 2021-22 split exactly.
    """
    codes = municipality_codes()
    raw = {
        (c, m): INHABITANTS_THOUSANDS[c] * _preference(m, _urban(c))
        for c in codes
        for m in _SPLIT
    }
    everyone = sum(INHABITANTS_THOUSANDS[c] for c in codes)
    scale = {m: _SPLIT[m] * everyone / sum(raw[(c, m)] for c in codes) for m in _SPLIT}
    sites: list[CountingSite] = []
    for code in codes:
        volume = {m: raw[(code, m)] * scale[m] * _COUNTED_PER_THOUSAND for m in _SPLIT}
        extra = 2 if code == "101" else 1  # København has more counters
        for n in range(1, extra + 1):
            sites.append(
                CountingSite(
                    f"sim-{code}-road-{n}",
                    "road_counter",
                    code,
                    "car",
                    ("in", "out"),
                    volume["car"] / extra / 2,
                )
            )
            sites.append(
                CountingSite(
                    f"sim-{code}-bike-{n}",
                    "bike_counter",
                    code,
                    "bike",
                    ("in", "out"),
                    volume["bike"] / extra / 2,
                )
            )
        sites.append(
            CountingSite(
                f"sim-{code}-walk-1", "survey", code, "walk", ("both",), volume["walk"]
            )
        )
        public = {"bus": _PUBLIC["bus"]}
        if code not in _NO_TRAIN:
            public["train"] = _PUBLIC["train"]
        if code in _METRO:
            public["metro"] = _PUBLIC["metro"]
        weight = sum(public.values())
        for mode, share in public.items():
            kind = "line" if mode == "bus" else "station"
            sites.append(
                CountingSite(
                    f"sim-{code}-{mode}-1",
                    kind,
                    code,
                    mode,
                    ("both",),
                    volume["public"] * share / weight,
                )
            )
    return tuple(sites)


def _group(mode: str) -> str:
    return mode if mode in _SPLIT else "public"


def _direction_factor(direction: str, hour: int, weekend: bool) -> float:
    if direction == "both" or weekend:
        return 1.0
    morning = 6 <= hour < 10
    evening = 15 <= hour < 19
    if not (morning or evening):
        return 1.0
    towards = (direction == "in") == morning
    return 1.3 if towards else 0.7


def _season(mode: str, day: date) -> float:
    # Bikes and walking peak in summer, a little.
    amplitude = {"bike": 0.25, "walk": 0.1}.get(mode, 0.03)
    return 1 + amplitude * math.cos(2 * math.pi * (day.timetuple().tm_yday - 196) / 365)


def _day_levels(seed: int, day: date) -> dict[str, float]:
    """Per-day factors by mode group: weekend dip and rain (fewer bikes)."""
    rng = random.Random(f"{seed}:day:{day}")  # noqa: S311 - reproducible demo data
    weekend = day.weekday() >= 5
    rain = rng.random() < 0.25
    levels = {}
    for group in _SPLIT:
        level = _WEEKEND_LEVEL[group] if weekend else 1.0
        if day.weekday() == 6:
            level *= _SUNDAY
        if rain and group == "bike":
            level *= 0.7
        elif rain and group == "public":
            level *= 1.08
        levels[group] = level * rng.uniform(0.95, 1.05)
    return levels


def _mobility_event(
    seed: int,
    site: CountingSite,
    direction: str,
    begin: datetime,
    value: int,
    revision: int,
    reported: datetime,
    delay_hours: float | None,
) -> dict[str, Any]:
    stamp = begin.strftime("%Y%m%dT%H")
    event: dict[str, Any] = {
        "schema": "mobility_count.v1",
        "event_id": (
            f"sim-{seed}:{site.site_id}:{site.mode}:{direction}:{stamp}Z:r{revision}"
        ),
        "producer": SIMULATOR_PRODUCER,
        "reported_at": _iso(reported),
        "site_id": site.site_id,
        "site_kind": site.site_kind,
        "municipality_code": site.municipality_code,
        "mode": site.mode,
        "direction": direction,
        # UTC, so the interval end always sorts after its start (also across
        # the autumn clock change); consumers convert to local time.
        "interval_start": _iso(begin),
        "interval_end": _iso(begin + timedelta(hours=1)),
        "count": value,
        "revision": revision,
    }
    if delay_hours is not None:
        event["delay_hours"] = delay_hours
    return event


def mobility_events(
    seed: int, start: date, hours: int | None = None
) -> Iterator[SimulatedEvent]:
    """Hourly counts of every site from local midnight of `start` on.

    Endless unless `hours` is given. Each hour's counts come together (the
    simulated clock); about 0.3 % of counts are restated one to three days
    later with `revision` 1.
    """
    rng = random.Random(f"{seed}:mobility")  # noqa: S311 - reproducible demo data
    sites = counting_sites()
    begin = datetime.combine(start, time(0), tzinfo=_LOCAL).astimezone(UTC)
    corrections: list[tuple[int, int, dict[str, Any]]] = []
    sequence = count()
    levels_day: date | None = None
    levels: dict[str, float] = {}
    for step in count():
        if hours is not None and step >= hours:
            return
        moment = begin + timedelta(hours=step)
        local = moment.astimezone(_LOCAL)
        while corrections and corrections[0][0] <= step:
            yield SimulatedEvent("mobility_count", heappop(corrections)[2])
        if local.date() != levels_day:
            levels_day = local.date()
            levels = _day_levels(seed, levels_day)
        weekend = local.weekday() >= 5
        hour = local.hour
        reported = moment + timedelta(hours=1, minutes=10)
        for site in sites:
            group = _group(site.mode)
            mean = (
                site.weekday_volume
                * _PROFILES[(group, weekend)][hour]
                * levels[group]
                * _season(group, local.date())
            )
            for direction in site.directions:
                expected = mean * _direction_factor(direction, hour, weekend)
                value = max(round(rng.gauss(expected, 2 + 0.08 * expected)), 0)
                delay = None
                if site.mode == "car":
                    # Minutes lost per car grow with traffic in the peaks.
                    peak = _PROFILES[(group, weekend)][hour] * 24
                    delay = round(value * 0.01 * peak * peak / 60 * 3, 1)
                event = _mobility_event(
                    seed, site, direction, moment, value, 0, reported, delay
                )
                yield SimulatedEvent("mobility_count", event)
                if rng.random() < 0.003:
                    due = step + rng.randint(24, 72)
                    fixed = max(round(value * rng.uniform(0.85, 1.1)), 0)
                    correction = _mobility_event(
                        seed,
                        site,
                        direction,
                        moment,
                        fixed,
                        1,
                        begin + timedelta(hours=due, minutes=20),
                        delay,
                    )
                    heappush(corrections, (due, next(sequence), correction))


# --- Malformed events ---------------------------------------------------------


def _without(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != name}


def malformed_events(seed: int, start: date) -> Iterator[SimulatedEvent]:
    """Endless malformed bodies, each naming the field validation must reject.

    First the CO2 demo's four, then a cycle over the other families: unknown
    municipality, negative count, missing field, wrong value, not JSON.
    """
    demo = co2_demo(seed=seed, latest_year=_latest_account_year(start))
    for defect, co2_body in zip(MALFORMED_DEFECTS, demo.malformed, strict=True):
        yield SimulatedEvent("co2_account", co2_body, defect)
    templates = mobility_events(seed + 1, start)
    fleet = fleet_events(seed, start)
    initiatives = initiative_events(seed, start)
    rng = random.Random(f"{seed}:malformed")  # noqa: S311 - reproducible demo data

    def template(n: int) -> dict[str, Any]:
        body = next(templates).body
        assert isinstance(body, dict)  # noqa: S101 - mobility events are dicts
        return {**body, "event_id": f"sim-{seed}:bad:{n}"}

    def fleet_template(n: int) -> dict[str, Any]:
        body = rng.choice(fleet).body if fleet else {}
        assert isinstance(body, dict)  # noqa: S101 - fleet events are dicts
        return {**body, "event_id": f"sim-{seed}:bad:{n}"}

    def initiative_template(n: int) -> dict[str, Any]:
        body = rng.choice(initiatives).body if initiatives else {}
        assert isinstance(body, dict)  # noqa: S101 - initiative events are dicts
        return {**body, "event_id": f"sim-{seed}:bad:{n}"}

    def unknown_municipality(n: int) -> tuple[str, dict[str, Any] | bytes, str]:
        return (
            "mobility_count",
            {**template(n), "municipality_code": "999"},
            ("municipality_code"),
        )

    def negative_count(n: int) -> tuple[str, dict[str, Any] | bytes, str]:
        return "mobility_count", {**template(n), "count": -rng.randint(1, 40)}, "count"

    def no_interval_end(n: int) -> tuple[str, dict[str, Any] | bytes, str]:
        return "mobility_count", _without(template(n), "interval_end"), "interval_end"

    def truncated(n: int) -> tuple[str, dict[str, Any] | bytes, str]:
        text = json.dumps(template(n), ensure_ascii=False)
        return "mobility_count", text[: len(text) * 2 // 3].encode(), "$"

    def fleet_no_date(n: int) -> tuple[str, dict[str, Any] | bytes, str]:
        return "fleet_status", _without(fleet_template(n), "date"), "date"

    def fleet_negative(n: int) -> tuple[str, dict[str, Any] | bytes, str]:
        body = fleet_template(n)
        buses = {**body["buses"], "diesel": -rng.randint(1, 9)}
        return "fleet_status", {**body, "buses": buses}, "buses.diesel"

    def initiative_no_status(n: int) -> tuple[str, dict[str, Any] | bytes, str]:
        return "initiative_status", _without(initiative_template(n), "status"), "status"

    def initiative_unknown_status(n: int) -> tuple[str, dict[str, Any] | bytes, str]:
        return (
            "initiative_status",
            {**initiative_template(n), "status": "ukendt"},
            ("status"),
        )

    makers: tuple[Callable[[int], tuple[str, dict[str, Any] | bytes, str]], ...] = (
        unknown_municipality,
        negative_count,
        fleet_no_date,
        initiative_no_status,
        truncated,
        fleet_negative,
        no_interval_end,
        initiative_unknown_status,
    )
    for n in count():
        kind, body, defect = makers[n % len(makers)](n)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        yield SimulatedEvent(kind, raw, defect)


# --- The mix ------------------------------------------------------------------


def _targets() -> list[SimulatedEvent]:
    return [SimulatedEvent("target", e) for e in seed_target_events()]


def _mix(sources: dict[str, Iterator[SimulatedEvent]]) -> Iterator[SimulatedEvent]:
    """Interleave sources by `MIX` share (smooth weighted round robin).

    Deterministic, and every source shows up within 1,000 / share events; a
    source that runs out leaves its share to the rest.
    """
    current = dict.fromkeys(sources, 0)
    active = dict(sources)
    while active:
        total = sum(MIX[name] for name in active)
        for name in active:
            current[name] += MIX[name]
        pick = max(active, key=lambda name: current[name])
        current[pick] -= total
        try:
            yield next(active[pick])
        except StopIteration:
            del active[pick]
            current.pop(pick)


def simulate(
    seed: int = DEFAULT_SEED, start: date = DEFAULT_START
) -> Iterator[SimulatedEvent]:
    """The endless simulated stream: history first, mixed with live counts.

    Accounts, fleet snapshots, initiative reports and targets known by
    `start` are interleaved (by `MIX` share) with hourly mobility counts from
    `start` on and a small share of malformed events; once the history is
    sent, counts and malformed events go on.
    """
    return _for_start(
        _mix(
            {
                "mobility_count": mobility_events(seed, start),
                "co2_account": iter(co2_events(seed, start)),
                "fleet_status": iter(fleet_events(seed, start)),
                "initiative_status": iter(initiative_events(seed, start)),
                "target": iter(_targets()),
                "malformed": malformed_events(seed, start),
            }
        ),
        start,
    )


def _for_start(
    events: Iterable[SimulatedEvent], start: date
) -> Iterator[SimulatedEvent]:
    """Tag the ids of start-dependent facts with the start date.

    Fleet, count and initiative figures are drawn along the simulated clock,
    so the same fact from a run with another `--start` has other figures; an
    id of its own keeps it from clashing with the first run's. CO2 accounts
    and targets do not depend on the start and keep their ids.
    """
    for event in events:
        body = event.body
        if isinstance(body, dict) and event.kind not in ("co2_account", "target"):
            body = {**body, "event_id": f"{body['event_id']}@{start.isoformat()}"}
            event = replace(event, body=body)
        yield event


def demo_events(
    seed: int = DEFAULT_SEED, start: date = DEFAULT_START, days: int = 7
) -> list[SimulatedEvent]:
    """A finite demo: all the history, `days` of hourly counts, 12 malformed.

    The same events (same ids) as the first part of `simulate(seed, start)`,
    so running both stores nothing twice.
    """
    return list(
        _for_start(
            _mix(
                {
                    "mobility_count": mobility_events(seed, start, hours=24 * days),
                    "co2_account": iter(co2_events(seed, start)),
                    "fleet_status": iter(fleet_events(seed, start)),
                    "initiative_status": iter(initiative_events(seed, start)),
                    "target": iter(_targets()),
                    "malformed": islice(malformed_events(seed, start), 12),
                }
            ),
            start,
        )
    )


def ids_by_kind(events: Iterable[SimulatedEvent]) -> dict[str, list[str]]:
    """Event ids of the valid events by kind, and dead-letter ids of the rest.

    Malformed bodies are listed under `dead_letter`: a run is fully processed
    when every id is stored in its family's table (or the dead-letter table).
    """
    result: dict[str, list[str]] = {}
    for event in events:
        if event.malformed:
            result.setdefault("dead_letter", []).append(str(event.dead_letter_id))
        else:
            result.setdefault(event.kind, []).append(str(event.event_id))
    return result


def kind_counts(events: Iterable[SimulatedEvent]) -> Counter[str]:
    """How many events of each kind (malformed ones under `malformed`)."""
    return Counter("malformed" if e.malformed else e.kind for e in events)
