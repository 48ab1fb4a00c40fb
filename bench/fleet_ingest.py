"""Benchmark: fleet snapshot ingest through the real handler into a real PostgreSQL.

Every batch is one transaction that stores the snapshots and rewrites the
fleet shares and fleet-target progress from all stored snapshots. Prints
events per second for several batch sizes against the one-event-per-
transaction baseline measured in the same run. The snapshots are synthetic:
month-end counts of 20 garages, electrifying over the years.

    python bench/fleet_ingest.py [--months N]

With `--cpu`, it feeds instead the pipeline benchmark's fleet mix
(`pipeline.build_mix(200000)`: 8,000 snapshots) in batches of 500, deriving
every other batch, and prints the CPU per event of this process and of the
embedded PostgreSQL (its processes), medians of `--runs` fresh databases.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from _harness import _fresh_database, batch_size_table
from pipeline import build_mix

from klimapuls.core.batch import Incoming
from klimapuls.core.reference import municipality_codes
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage.db import create_db_engine

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


def _cpu_of(root: psutil.Process) -> float:
    """CPU seconds of a process and its children (the server's backends)."""
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue  # a backend that just ended
        total += times.user + times.system
    return total


def _cpu_run(
    url: str, messages: list[Incoming], server: psutil.Process
) -> tuple[float, float]:
    """Python and PostgreSQL CPU µs per event of one run on a fresh database."""
    engine = create_db_engine(url)
    moment = [datetime(2026, 11, 1, tzinfo=UTC)]

    def clock() -> datetime:
        # Half a window a batch: every other batch derives.
        moment[0] += timedelta(seconds=0.5)
        return moment[0]

    handler = FleetHandler(engine, clock, "fleet", 1.0)
    handler.handle(messages[:1])  # connections, statements, caches
    rest = messages[1:]
    python, postgres = time.process_time(), _cpu_of(server)
    for i in range(0, len(rest), 500):
        handler.handle(rest[i : i + 500])
    handler.flush(force=True)
    python, postgres = time.process_time() - python, _cpu_of(server) - postgres
    engine.dispose()
    return python / len(rest) * 1e6, postgres / len(rest) * 1e6


def cpu_table(runs: int) -> None:
    """Print CPU µs per fleet event of the pipeline benchmark's fleet mix."""
    messages = [
        Incoming("fleet_status", json.dumps(e.body).encode(), f"bench:0:{i}")
        for i, e in enumerate(build_mix(200_000))
        if e.kind == "fleet_status" and not e.malformed
    ]
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        server.start()
        try:
            root = psutil.Process(server.running_pid())
            results = []
            for run in range(runs):
                url = _fresh_database(server, f"cpu{run}")
                results.append(_cpu_run(url, messages, root))
                print(
                    f"run {run}: {len(messages)} events, CPU per event: "
                    f"python {results[-1][0]:.0f} µs, postgres {results[-1][1]:.0f} µs",
                    flush=True,
                )
            python = statistics.median(r[0] for r in results)
            postgres = statistics.median(r[1] for r in results)
            print(
                f"median CPU per event: python {python:.0f} µs, "
                f"postgres {postgres:.0f} µs, both {python + postgres:.0f} µs"
            )
        finally:
            server.stop()


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--months", type=int, default=84)
    parser.add_argument("--cpu", action="store_true", help="the bench's fleet mix")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.cpu:
        cpu_table(args.runs)
        return
    messages = [
        Incoming("fleet_status", json.dumps(e).encode(), f"bench:0:{i}")
        for i, e in enumerate(_snapshots(args.months))
    ]
    batch_size_table(FleetHandler, messages, baseline_events=200)


if __name__ == "__main__":
    main()
