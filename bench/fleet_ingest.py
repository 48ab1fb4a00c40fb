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
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from klimapuls.core.reference import municipality_codes
from klimapuls.fleet.handlers import FleetHandler, Incoming
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage import prepare_database
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


def _fresh_database(server: EmbeddedPostgres, name: str) -> str:
    admin = server.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.url(name)
    prepare_database(url)
    return url


def _run(url: str, messages: list[Incoming], batch_size: int) -> float:
    engine = create_db_engine(url)
    handler = FleetHandler(engine, lambda: datetime(2026, 11, 1, tzinfo=UTC))
    started = time.perf_counter()
    for i in range(0, len(messages), batch_size):
        handler.handle(messages[i : i + batch_size])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return len(messages) / elapsed


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--months", type=int, default=84)
    args = parser.parse_args()
    messages = [
        Incoming("fleet_status", json.dumps(e).encode(), f"bench:0:{i}")
        for i, e in enumerate(_snapshots(args.months))
    ]
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        server.start()
        try:
            # The baseline on a slice: one event per transaction is slow.
            baseline_n = min(200, len(messages))
            baseline = _run(_fresh_database(server, "b1"), messages[:baseline_n], 1)
            print(
                f"{'batch size':>10} {'events':>7} {'events/s':>10} {'vs batch 1':>10}"
            )
            print(f"{1:>10} {baseline_n:>7} {baseline:>10.0f} {1.0:>9.1f}x")
            for size in (50, 500):
                rate = _run(_fresh_database(server, f"b{size}"), messages, size)
                ratio = rate / baseline
                print(f"{size:>10} {len(messages):>7} {rate:>10.0f} {ratio:>9.1f}x")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
