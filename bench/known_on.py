"""Known-on views and the restatement log: what they cost on the demo mix.

Fills a fresh database with the demo mix (every family, `--days` of hourly
counts) through the services' handlers, then times, as medians of
`--rounds` runs:

- `load_facts` as the targets service calls it (the rollup path, the
  baseline), and with the trips known on one date aggregated from the
  counts (`progress --known-on`);
- `all_restatements` on those facts (what every recomputation now adds);
- the targets service's whole recomputation.

    python bench/known_on.py [--days 7] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from _harness import _fresh_database

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import Incoming
from klimapuls.core.restatements import all_restatements
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.simulator import demo_events
from klimapuls.simulator.events import DEFAULT_START
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage.db import create_db_engine, in_transaction
from klimapuls.storage.facts import load_facts
from klimapuls.targets.handlers import TargetsHandler, recompute

T = TypeVar("T")
HANDLERS: dict[str, Callable[..., Any]] = {
    "co2_account": Co2Handler,
    "fleet_status": FleetHandler,
    "mobility_count": MobilityHandler,
    "initiative_status": InitiativeHandler,
    "target": TargetsHandler,
}


def _median(rounds: int, work: Callable[[], T]) -> tuple[float, T]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    assert result is not None
    return statistics.median(times), result


def main() -> None:
    """Fill, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # The services' clock: after the last demo count was reported.
    after = DEFAULT_START + timedelta(days=args.days + 1)
    now = datetime(after.year, after.month, after.day, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        server.start()
        try:
            engine = create_db_engine(_fresh_database(server, "bench_known_on"))
            by_kind: dict[str, list[Incoming]] = {}
            for i, event in enumerate(demo_events(days=args.days)):
                body = event.body
                value = body if isinstance(body, bytes) else json.dumps(body).encode()
                by_kind.setdefault(event.kind, []).append(
                    Incoming(event.kind, value, f"bench:0:{i}")
                )
            for kind, make in HANDLERS.items():
                handler = make(engine, lambda: now)
                messages = by_kind.get(kind, [])
                for start in range(0, len(messages), 500):
                    handler.handle(messages[start : start + 500])
            total = sum(len(m) for m in by_kind.values())
            print(f"demo mix: {total:,} events ({args.days} days of counts)")

            day = after  # every count known: the most to aggregate
            base, facts = _median(
                args.rounds, lambda: in_transaction(engine, load_facts)
            )
            known, _ = _median(
                args.rounds,
                lambda: in_transaction(engine, lambda c: load_facts(c, (day,))),
            )
            audit, found = _median(args.rounds, lambda: all_restatements(facts))
            whole, _ = _median(
                args.rounds, lambda: in_transaction(engine, lambda c: recompute(c, now))
            )
            print(f"load_facts (rollups, baseline): {base * 1000:8.1f} ms")
            print(
                f"load_facts + known on {day}:  {known * 1000:8.1f} ms "
                f"({known / base:.1f}x)"
            )
            print(
                f"all_restatements:               {audit * 1000:8.1f} ms "
                f"({len(found)} restatements; {audit / base:.2f}x of the load)"
            )
            print(
                f"targets recompute (all of it):  {whole * 1000:8.1f} ms "
                f"(the restatement log {audit / whole:.0%} of it)"
            )
            engine.dispose()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
