"""Synthetic DK2020 targets for the 29 municipalities, for the demo.

The meeting papers give no municipal interim targets, so these are made up
and say so in their name and source ("syntetisk"): a 2030 interim target
against 1990 of -75 % or -80 % (alternating by municipality), measured on
the demo's synthetic CO2 accounts. With those accounts, some municipalities
are on track (or there already) and some slip, so `klimapuls up --demo`
shows alerts going to the municipalities' demo contacts.
"""

from __future__ import annotations

from klimapuls.core.reference import municipalities
from klimapuls.simulator.events import SIMULATOR_PRODUCER, SimulatedEvent

__all__ = ["DEMO_TARGET_SOURCE", "dk2020_demo_targets"]

DEMO_TARGET_SOURCE = (
    "syntetisk demo-mål (Klimapuls), ikke kommunens vedtagne DK2020-plan"
)


def dk2020_demo_targets() -> list[SimulatedEvent]:
    """One synthetic `target.v1` DK2020 interim target per municipality."""
    events = []
    for n, m in enumerate(municipalities()):
        pct = 75 if n % 2 == 0 else 80
        target_id = f"syntetisk-dk2020-{m.code}-2030"
        events.append(
            SimulatedEvent(
                "target",
                {
                    "schema": "target.v1",
                    "event_id": f"sim:target:{target_id}:v1",
                    "producer": SIMULATOR_PRODUCER,
                    "reported_at": "2024-01-01T00:00:00+00:00",
                    "target_id": target_id,
                    "name": f"DK2020 {m.name}: CO2e -{pct} % i 2030 (syntetisk)",
                    "scope": m.code,
                    "indicator": "co2e_total",
                    "baseline_year": 1990,
                    "target_year": 2030,
                    "reduction_pct": pct,
                    "version": 1,
                    "source": DEMO_TARGET_SOURCE,
                },
            )
        )
    return events
