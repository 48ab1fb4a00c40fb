"""Simulated malformed events, each naming the field a validator must reject.

Unknown municipality, negative count, missing field, wrong value, not JSON:
a small share of the stream, for the dead-letter path.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import date
from itertools import count
from typing import Any

from klimapuls.simulator.co2 import MALFORMED_DEFECTS, co2_demo, latest_account_year
from klimapuls.simulator.events import SimulatedEvent
from klimapuls.simulator.fleet import fleet_events
from klimapuls.simulator.initiatives import initiative_events
from klimapuls.simulator.mobility import mobility_events

__all__ = [
    "malformed_events",
]

# --- Malformed events ---------------------------------------------------------


def _without(event: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != name}


def malformed_events(seed: int, start: date) -> Iterator[SimulatedEvent]:
    """Endless malformed bodies, each naming the field validation must reject.

    First the CO2 demo's four, then a cycle over the other families: unknown
    municipality, negative count, missing field, wrong value, not JSON.
    """
    demo = co2_demo(seed=seed, latest_year=latest_account_year(start))
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
