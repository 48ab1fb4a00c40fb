"""Simulated initiative status reports, round by round.

The October 2022 and 2023 rounds as in the status table, then synthetic
rounds (completions, delays, a tovholder hand-over, Klimaalliancen sharing
the role); the VIP climate projects from 2020.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from typing import Any

from klimapuls.core.initiatives import (
    PROGRAMME_CLIMATE,
    PROGRAMME_INFRASTRUCTURE,
    REGION_TOVHOLDER,
    SECRETARIAT_TOVHOLDER,
    Initiative,
    initiative_id,
    reference_initiatives,
)
from klimapuls.simulator.events import SIMULATOR_PRODUCER, SimulatedEvent, iso

__all__ = [
    "initiative_events",
]

_NOTE = "synthetic (Klimapuls simulator, not real figures)"

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
        "reported_at": iso(reported),
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
