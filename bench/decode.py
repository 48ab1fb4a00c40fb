"""Per-event core cost of a mobility count: decoding and judging, no database.

Times `decode_event` (JSON, schema, domain and horizon rules) and
`Ledger.judge` (identity, digest) on simulated count bodies, in µs per event
as the median of `--rounds` passes. With `--before PATH` (another checkout's
`services` folder) each round also times that code in a child process,
interleaved with this one, and the table shows the ratio measured in the
same run.

    python bench/decode.py [--events 50000] [--rounds 5] [--before PATH] [--distinct]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from itertools import islice

from klimapuls.core.identity import Ledger
from klimapuls.core.validation import decode_event
from klimapuls.simulator import mobility_events

NOW = datetime(2027, 1, 1, tzinfo=UTC)
KIND = "mobility_count"


def _bodies(events: int, distinct: bool = False) -> list[bytes]:
    """Count bodies; `distinct` gives each its own `reported_at` (microseconds).

    The counts of one hour share their interval's and their `reported_at`
    text, which the core remembers; `distinct` measures the case where each
    count's `reported_at` is new to it.
    """
    counts = islice(mobility_events(2045, date(2026, 6, 1)), events)
    bodies = []
    for i, count in enumerate(counts):
        body = dict(count.body)
        if distinct:
            at = body["reported_at"]  # 2026-05-31T23:10:00+00:00
            body["reported_at"] = f"{at[:19]}.{i % 1_000_000:06d}{at[19:]}"
        bodies.append(json.dumps(body).encode())
    return bodies


def _pass(bodies: list[bytes]) -> dict[str, float]:
    """µs per event of decoding, then of judging the decoded events."""
    started = time.perf_counter()
    events = [decode_event(KIND, raw, now=NOW) for raw in bodies]
    decoded = time.perf_counter()
    ledger = Ledger(KIND)
    for event in events:
        ledger.judge(event)
    judged = time.perf_counter()
    per = 1e6 / len(bodies)
    return {"decode": (decoded - started) * per, "judge": (judged - decoded) * per}


def _child(path: str, events: int, distinct: bool) -> dict[str, float]:
    """One pass of the code under `path`, in its own interpreter."""
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, __file__, "--events", str(events), "--one-pass"]
    command += ["--distinct"] if distinct else []
    out = subprocess.run(command, env=env, capture_output=True, check=True, text=True)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", help="the `services` folder to compare with")
    parser.add_argument(
        "--distinct", action="store_true", help="a reported_at of its own per count"
    )
    parser.add_argument("--one-pass", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    bodies = _bodies(args.events, args.distinct)
    if args.one_pass:
        print(json.dumps(_pass(bodies)))
        return
    now: list[dict[str, float]] = []
    before: list[dict[str, float]] = []
    for _ in range(args.rounds):
        if args.before:
            before.append(_child(args.before, args.events, args.distinct))
        now.append(_pass(bodies))
    times = "a reported_at of its own each" if args.distinct else "as simulated"
    print(
        f"{args.events:,} counts ({times}), "
        f"median of {args.rounds} rounds (µs per event)"
    )
    for step in ("decode", "judge"):
        after = statistics.median(r[step] for r in now)
        line = f"{step:7s} {after:7.2f}"
        if before:
            old = statistics.median(r[step] for r in before)
            line = f"{step:7s} {old:7.2f} -> {after:7.2f}  ({old / after:.1f}x faster)"
        print(line)


if __name__ == "__main__":
    main()
