"""The simulated bus fleet: month-end snapshots per garage.

Movia's totals follow the public figures, interpolated: end 2022 39 %
fossil-free and 25 % electric or hydrogen; April 2025 593 electric buses,
53 % of ~1,120; fossil-free by 2030. The first zero-emission orders
(Roskilde, København, Frederiksberg, Ballerup, Egedal) electrify first; one
garage runs the hydrogen trial; Bornholm's own operator reports too. A few
snapshots are restated.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

from klimapuls.core.initiatives import initiative_id
from klimapuls.simulator.events import SIMULATOR_PRODUCER, SimulatedEvent, iso

__all__ = [
    "fleet_events",
    "movia_fleet",
]

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
        "reported_at": iso(reported),
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
