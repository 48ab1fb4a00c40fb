"""Benchmark: fleet snapshot ingest through the real handler into a real PostgreSQL.

Every batch is one transaction that stores the snapshots and rewrites the
fleet shares and fleet-target progress from all stored snapshots. Prints
events per second for several batch sizes against the one-event-per-
transaction baseline measured in the same run. The snapshots are synthetic:
month-end counts of 20 garages, electrifying over the years.

    python bench/fleet_ingest.py [--months N]
"""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from typing import Any

from _harness import batch_size_table

from klimapuls.core.batch import Incoming
from klimapuls.core.reference import municipality_codes
from klimapuls.fleet.handlers import FleetHandler

GARAGES = 20
BUSES_PER_GARAGE = 56


def _month_ends(months: int) -> list[date]:
    ends, year, month = [], 2019, 1
    for _ in range(months):
        following = date(year + month // 12, month % 12 + 1, 1)
        ends.append(following - timedelta(days=1))
        year, month = following.year, following.month
    return ends


def _snapshots(months: int) -> list[dict[str, Any]]:
    codes = municipality_codes()
    events = []
    ends = _month_ends(months)
    for m, day in enumerate(ends):
        for g in range(GARAGES):
            electric = min(BUSES_PER_GARAGE, (m * (g + 1)) // 8)
            hvo = min(BUSES_PER_GARAGE - electric, m // 3)
            events.append(
                {
                    "schema": "fleet_status.v1",
                    "event_id": f"bench:movia:g{g}:{day}",
                    "producer": "bench",
                    "reported_at": f"{day + timedelta(days=3)}T08:00:00+00:00",
                    "operator": "movia",
                    "garage": f"g{g}",
                    "municipality_code": codes[g % len(codes)],
                    "date": day.isoformat(),
                    "buses": {
                        "diesel": BUSES_PER_GARAGE - electric - hvo,
                        "hvo": hvo,
                        "battery_electric": electric,
                    },
                }
            )
    return events


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--months", type=int, default=84)
    args = parser.parse_args()
    messages = [
        Incoming("fleet_status", json.dumps(e).encode(), f"bench:0:{i}")
        for i, e in enumerate(_snapshots(args.months))
    ]
    batch_size_table(FleetHandler, messages, baseline_events=200)


if __name__ == "__main__":
    main()
