"""Benchmark: incremental mobility rollups against a full rebuild, same run.

Starts an embedded PostgreSQL, ingests hourly counts (synthetic, seeded) for
SITES sites x 2 directions over DAYS days through the repository (monthly
partitions created on demand), then times:

- a full rebuild of the hour, day and year rollups from every current count
  (the baseline: what a plain materialised view refresh does);
- an incremental refresh after a typical batch: one new hour from every site
  plus RESTATED corrections of old counts scattered over the period;
- a refresh with nothing new.

    python bench/mobility_rollup.py [--sites 100] [--days 60] [--restated 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from _harness import _fresh_database
from sqlalchemy import Engine

from klimapuls.core.mobility import MODES
from klimapuls.core.reference import municipality_codes
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import create_db_engine, in_transaction
from klimapuls.storage.grants import load_grants

T = TypeVar("T")
START = datetime(2025, 1, 1, tzinfo=UTC)
#: The clock of the benchmark's writes (after every simulated count).
NOW = datetime(2030, 1, 1, tzinfo=UTC)
REPORTED = "2026-06-01T00:00:00+00:00"


def _event(site: int, direction: str, hour: datetime, count: int, revision: int = 0):
    return {
        "schema": "mobility_count.v1",
        "event_id": f"bench:{site}:{direction}:{hour:%Y%m%d%H}:r{revision}",
        "producer": "bench",
        "reported_at": REPORTED,
        "site_id": f"site-{site}",
        "municipality_code": municipality_codes()[site % 29],
        "mode": MODES[site % len(MODES)],
        "direction": direction,
        "interval_start": hour.isoformat(),
        "interval_end": (hour + timedelta(hours=1)).isoformat(),
        "count": count,
        "revision": revision,
    }


def _hour_of_counts(rng: random.Random, sites: int, hour: datetime) -> list[Any]:
    return [
        _event(site, direction, hour, rng.randint(0, 900))
        for site in range(sites)
        for direction in ("in", "out")
    ]


def _timed(engine: Engine, work: Callable[[Any], T]) -> tuple[float, T]:
    began = time.perf_counter()
    result = in_transaction(engine, work)
    return time.perf_counter() - began, result


def main() -> None:
    """Run the benchmark and print figures with ratios against the rebuild."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--restated", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(2035)
    hours = [START + timedelta(hours=h) for h in range(args.days * 24)]

    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        server.start()
        try:
            engine = create_db_engine(_fresh_database(server, "bench_mobility"))
            ingest_s = 0.0
            stored = 0
            for day in range(0, len(hours), 24):
                batch = [
                    e
                    for hour in hours[day : day + 24]
                    for e in _hour_of_counts(rng, args.sites, hour)
                ]
                seconds, result = _timed(
                    engine,
                    lambda c, b=batch: counts.store_counts(
                        c, b, NOW, grants=load_grants(c)
                    ),
                )
                ingest_s += seconds
                stored += result.added
            print(
                f"ingested {stored:,} counts in {ingest_s:.1f} s "
                f"({stored / ingest_s:,.0f} counts/s, store_counts, "
                f"{args.sites * 48:,} per transaction)"
            )

            rebuilds = []
            for _ in range(3):
                seconds, rebuilt = _timed(engine, counts.rebuild_rollups)
                rebuilds.append(seconds)
            rebuild_s = statistics.median(rebuilds)
            print(
                f"full rebuild:         {rebuild_s * 1000:9.1f} ms  "
                f"({rebuilt.hours:,} hours, {rebuilt.days} days, "
                f"{rebuilt.years} years)"
            )

            next_hour = hours[-1]

            def incremental(restated: int) -> float:
                nonlocal next_hour
                timings = []
                for _ in range(args.rounds):
                    next_hour += timedelta(hours=1)
                    batch = _hour_of_counts(rng, args.sites, next_hour)
                    for _ in range(restated):
                        old = rng.choice(hours)
                        site = rng.randrange(args.sites)
                        batch.append(_event(site, "in", old, rng.randint(0, 900), 1))
                    in_transaction(
                        engine,
                        lambda c, b=batch: counts.store_counts(
                            c, b, NOW, grants=load_grants(c)
                        ),
                    )
                    seconds, refreshed = _timed(engine, counts.refresh_rollups)
                    timings.append(seconds)
                median = statistics.median(timings)
                print(
                    f"incremental refresh:  {median * 1000:9.1f} ms  "
                    f"({len(batch)} counts, {restated} of them restatements: "
                    f"{refreshed.hours} hours, {refreshed.days} days, "
                    f"{refreshed.years} years)"
                )
                return median

            new_only_s = incremental(0)
            restated_s = incremental(args.restated)

            noops = [_timed(engine, counts.refresh_rollups)[0] for _ in range(20)]
            noop_s = statistics.median(noops)
            print(f"no-op refresh:        {noop_s * 1000:9.2f} ms")

            print(
                f"speed-up against the full rebuild: new hour "
                f"{rebuild_s / new_only_s:,.0f}x, with restatements "
                f"{rebuild_s / restated_s:,.0f}x, no-op {rebuild_s / noop_s:,.0f}x"
            )
            engine.dispose()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
