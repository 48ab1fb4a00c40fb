"""Simulated mobility counts: hourly counts from counting sites.

Counting sites in every municipality (road, bike, pedestrian, bus line,
station), with morning and evening peaks on weekdays, a weekend dip, rainy
days for bikes, and a regional mode mix near the 2021-22 split (car 44 %,
bike 21 %, walk 24 %, public 11 %). A few counts are restated later with a
higher `revision`. Mobility counts advance the simulated clock, one hour at
a time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from heapq import heappop, heappush
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

from klimapuls.core.reference import municipality_codes
from klimapuls.simulator.co2 import INHABITANTS_THOUSANDS
from klimapuls.simulator.events import SIMULATOR_PRODUCER, SimulatedEvent, iso

__all__ = [
    "CountingSite",
    "counting_sites",
    "mobility_events",
]

_LOCAL = ZoneInfo("Europe/Copenhagen")

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
        "reported_at": iso(reported),
        "site_id": site.site_id,
        "site_kind": site.site_kind,
        "municipality_code": site.municipality_code,
        "mode": site.mode,
        "direction": direction,
        # UTC, so the interval end always sorts after its start (also across
        # the autumn clock change); consumers convert to local time.
        "interval_start": iso(begin),
        "interval_end": iso(begin + timedelta(hours=1)),
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
