"""Seeded synthetic CO2 accounts for demos and tests, labelled as such.

The meeting papers give no absolute tonnes, so the demo data are made up,
reproducibly: every municipality from 1990 to `latest_year`, sector split
moving towards the 2021 regional split in the domain brief (energy 55 %,
transport 33 %, agriculture 7 % less a point, other 6 % split into waste,
industry and other), and the papers' known problems: a reporting lag (the
newest year is reported by only some municipalities), recalculated earlier
years (restatements with a newer vintage), and a few malformed events.
Every event's `source` says `synthetic`.

`co2_events` hands the accounts to the simulator, in release order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from klimapuls.core.reference import municipality_codes
from klimapuls.simulator.events import SimulatedEvent

__all__ = [
    "INHABITANTS_THOUSANDS",
    "MALFORMED_DEFECTS",
    "SYNTHETIC_SOURCE",
    "DemoData",
    "co2_demo",
    "co2_events",
    "latest_account_year",
]

SYNTHETIC_SOURCE = "synthetic (Klimapuls demo data, not real figures)"
SECTORS = ("energy", "transport", "agriculture", "waste", "industry", "other")
#: The field each of `DemoData.malformed` gets wrong, in the same order
#: (`$` for a body that is not JSON at all).
MALFORMED_DEFECTS = ("municipality_code", "tonnes_co2e", "vintage", "$")

# Regional sector shares in 1990 (assumed) and 2021 (domain brief).
_SHARE_1990 = {
    "energy": 0.70,
    "transport": 0.20,
    "agriculture": 0.05,
    "waste": 0.03,
    "industry": 0.015,
    "other": 0.005,
}
_SHARE_2021 = {
    "energy": 0.55,
    "transport": 0.33,
    "agriculture": 0.06,
    "waste": 0.03,
    "industry": 0.02,
    "other": 0.01,
}
# Approximate inhabitants in thousands, only to size the municipalities.
_SIZE = {
    "101": 650,
    "147": 105,
    "151": 49,
    "153": 36,
    "155": 14,
    "157": 75,
    "159": 70,
    "161": 23,
    "163": 30,
    "165": 28,
    "167": 55,
    "169": 52,
    "173": 57,
    "175": 41,
    "183": 24,
    "185": 44,
    "187": 17,
    "190": 41,
    "201": 26,
    "210": 41,
    "217": 63,
    "219": 52,
    "223": 25,
    "230": 57,
    "240": 44,
    "250": 46,
    "260": 31,
    "270": 41,
    "400": 39,
}
#: Approximate inhabitants in thousands by kommune code (sizes, not statistics).
INHABITANTS_THOUSANDS = _SIZE
_REGION_1990_T = 11_000_000.0  # tonnes CO2e, assumed
_FIRST_RELEASE = 2012  # the account's first release computed 1990..2010 at once


@dataclass(frozen=True)
class DemoData:
    """The generated events: valid ones and raw malformed bodies."""

    events: list[dict[str, Any]]
    malformed: list[bytes]


def _share(sector: str, year: int) -> float:
    w = min(max((year - 1990) / (2021 - 1990), 0.0), 1.0)
    return _SHARE_1990[sector] * (1 - w) + _SHARE_2021[sector] * w


def _regional_factor(year: int) -> float:
    # Roughly flat in the 1990s, then a steady fall to ~-60 % by 2021.
    if year <= 2000:
        return 1.0 - 0.006 * (year - 1990)
    return max(0.94 - 0.026 * (year - 2000), 0.2)


def _event(
    code: str, year: int, sector: str, tonnes: float, vintage: date, seed: int
) -> dict[str, Any]:
    return {
        "schema": "co2_account.v1",
        "event_id": f"synthetic-{seed}:{code}:{year}:{sector}:{vintage.isoformat()}",
        "producer": "klimapuls-demo",
        "reported_at": datetime(
            vintage.year, vintage.month, vintage.day, 9, tzinfo=UTC
        ).isoformat(),
        "municipality_code": code,
        "year": year,
        "sector": sector,
        "tonnes_co2e": round(tonnes, 1),
        "vintage": vintage.isoformat(),
        "source": SYNTHETIC_SOURCE,
    }


def _malformed(seed: int) -> list[bytes]:
    base = _event("101", 2020, "energy", 1000.0, date(2021, 5, 1), seed)
    bad_code = {
        **base,
        "event_id": f"synthetic-{seed}:bad-code",
        "municipality_code": "999",
    }
    negative = {**base, "event_id": f"synthetic-{seed}:negative", "tonnes_co2e": -5}
    no_vintage = {k: v for k, v in base.items() if k != "vintage"}
    no_vintage["event_id"] = f"synthetic-{seed}:no-vintage"
    return [
        json.dumps(bad_code).encode(),
        json.dumps(negative).encode(),
        json.dumps(no_vintage).encode(),
        b"{not json at all",
    ]


def co2_demo(
    seed: int = 2045, latest_year: int = 2025, partial_reporters: int = 17
) -> DemoData:
    """All 29 municipalities from 1990 to `latest_year`, plus restatements.

    The newest year is reported by only `partial_reporters` municipalities
    (the reporting lag), so the newest counted year is the one before.
    """

    # One generator per fact (not one stream for all): a fact keeps its
    # figures, and so its event id keeps its content, whatever `latest_year`.
    def rng(*fact: object) -> random.Random:
        return random.Random(":".join(map(str, (seed, *fact))))  # noqa: S311

    codes = list(municipality_codes())
    total_size = sum(_SIZE[c] for c in codes)
    events: list[dict[str, Any]] = []
    late = set(rng("late", latest_year).sample(codes, len(codes) - partial_reporters))
    for code in codes:
        weight = _SIZE[code] / total_size
        pace = rng(code).uniform(0.85, 1.15)  # some municipalities cut faster
        for year in range(1990, latest_year + 1):
            if year == latest_year and code in late:
                continue
            factor = max(1 - (1 - _regional_factor(year)) * pace, 0.05)
            vintage = date(max(year + 1, _FIRST_RELEASE), 5, 1)
            for sector in SECTORS:
                fact = rng(code, year, sector)
                noise = fact.uniform(0.97, 1.03)
                tonnes = _REGION_1990_T * weight * factor * _share(sector, year) * noise
                events.append(_event(code, year, sector, tonnes, vintage, seed))
                # Recalculations: some recent years are restated a year later.
                restate = fact.random() < 0.05
                factor_restated = fact.uniform(0.93, 1.02)
                if 2016 <= year <= latest_year - 2 and restate:
                    restated = date(vintage.year + 1, 5, 1)
                    events.append(
                        _event(
                            code, year, sector, tonnes * factor_restated, restated, seed
                        )
                    )
    return DemoData(events=events, malformed=_malformed(seed))


# --- CO2 accounts -------------------------------------------------------------


def latest_account_year(start: date) -> int:
    """The newest year whose account is released by `start`."""
    # The account for year Y is released in May of Y+1 (co2_demo's vintages).
    return start.year - 1 if start >= date(start.year, 5, 1) else start.year - 2


def co2_events(seed: int, start: date) -> list[SimulatedEvent]:
    """The synthetic CO2 accounts released by `start`, in release order."""
    demo = co2_demo(seed=seed, latest_year=latest_account_year(start))
    ordered = sorted(
        demo.events,
        key=lambda e: (e["vintage"], e["municipality_code"], e["year"], e["sector"]),
    )
    return [SimulatedEvent("co2_account", e) for e in ordered]
