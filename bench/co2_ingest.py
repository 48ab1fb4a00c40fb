"""Benchmark: CO2 account ingest through the real handler into a real PostgreSQL.

Measures events per second for several batch sizes (one transaction and one
progress recomputation per batch) on the seeded demo data set, and prints each
against the one-event-per-transaction baseline measured in the same run.

    python bench/co2_ingest.py [--events N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from klimapuls.co2.handlers import Co2Handler, Incoming
from klimapuls.core.synthetic import co2_demo
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage import prepare_database
from klimapuls.storage.db import create_db_engine


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
    handler = Co2Handler(engine, lambda: datetime(2026, 11, 1, tzinfo=UTC))
    started = time.perf_counter()
    for i in range(0, len(messages), batch_size):
        handler.handle(messages[i : i + batch_size])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return len(messages) / elapsed


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
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        server.start()
        try:
            # The baseline on a slice: one event per transaction is slow.
            baseline_n = min(300, len(messages))
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
