"""Benchmark: CO2 account ingest through the real handler into a real PostgreSQL.

Measures events per second for several batch sizes (one transaction and one
progress recomputation per batch) on the seeded demo data set, and prints each
against the one-event-per-transaction baseline measured in the same run.

    python bench/co2_ingest.py [--events N]
"""

from __future__ import annotations

import argparse
import json

from _harness import batch_size_table

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import Incoming
from klimapuls.simulator import co2_demo


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    events = co2_demo().events[: args.events]
    messages = [
        Incoming("co2_account", json.dumps(e).encode(), f"bench:0:{i}")
        for i, e in enumerate(events)
    ]
    batch_size_table(Co2Handler, messages, baseline_events=300)


if __name__ == "__main__":
    main()
