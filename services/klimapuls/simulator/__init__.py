"""A seeded, realistic, synthetic event stream of every family, for demos and load.

The meeting papers give no per-municipality figures, bus counts or traffic
counts, so everything here is made up, reproducibly, around the public facts
of the domain brief, and labelled synthetic (`producer` is
`SIMULATOR_PRODUCER`; CO2 accounts carry `synthetic` in `source`):

- **CO2 accounts**: `co2.co2_demo` (all 29 municipalities, reporting
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
- **Targets**: the seed targets (same event ids as the seed data); for
  the demo also synthetic DK2020 targets of all 29 municipalities
  (`targets.dk2020_demo_targets`, labelled "syntetisk").
- **Malformed events**: a small share, each with the field a validator must
  name (unknown municipality, negative count, missing field, not JSON).

Every event id is derived from the seed and the fact, so sending the same
stream twice stores nothing new. Pacing (events per second) is the caller's
job; `simulate` yields as fast as it is asked.
"""

from __future__ import annotations

from klimapuls.simulator.co2 import co2_demo, co2_events
from klimapuls.simulator.events import (
    DEFAULT_SEED,
    DEFAULT_START,
    SIMULATOR_PRODUCER,
    SimulatedEvent,
)
from klimapuls.simulator.fleet import fleet_events, movia_fleet
from klimapuls.simulator.initiatives import initiative_events
from klimapuls.simulator.malformed import malformed_events
from klimapuls.simulator.mobility import CountingSite, counting_sites, mobility_events
from klimapuls.simulator.stream import (
    MIX,
    demo_events,
    ids_by_kind,
    kind_counts,
    simulate,
)
from klimapuls.simulator.targets import DEMO_TARGET_SOURCE, dk2020_demo_targets

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_START",
    "DEMO_TARGET_SOURCE",
    "MIX",
    "SIMULATOR_PRODUCER",
    "CountingSite",
    "SimulatedEvent",
    "co2_demo",
    "co2_events",
    "counting_sites",
    "demo_events",
    "dk2020_demo_targets",
    "fleet_events",
    "ids_by_kind",
    "initiative_events",
    "kind_counts",
    "malformed_events",
    "mobility_events",
    "movia_fleet",
    "simulate",
]
