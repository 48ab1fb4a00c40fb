"""Per-event core cost of a mobility count: decoding and judging, no database.

Times `decode_event` (JSON, schema, domain and horizon rules) and
`Ledger.judge` (identity, digest) on simulated count bodies, in µs per event
as the median of `--rounds` passes. With `--before PATH` (another checkout's
`services` folder) each round also times that code in a child process,
interleaved with this one, and the table shows the ratio measured in the
same run.

    python bench/decode.py [--events 50000] [--rounds 5] [--before PATH]
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


def _bodies(events: int) -> list[bytes]:
    counts = islice(mobility_events(2045, date(2026, 6, 1)), events)
    return [json.dumps(e.body).encode() for e in counts]


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


def _child(path: str, events: int) -> dict[str, float]:
    """One pass of the code under `path`, in its own interpreter."""
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, __file__, "--events", str(events), "--one-pass"]
    out = subprocess.run(command, env=env, capture_output=True, check=True, text=True)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", help="the `services` folder to compare with")
    parser.add_argument("--one-pass", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    bodies = _bodies(args.events)
    if args.one_pass:
        print(json.dumps(_pass(bodies)))
        return
    now: list[dict[str, float]] = []
    before: list[dict[str, float]] = []
    for _ in range(args.rounds):
        if args.before:
            before.append(_child(args.before, args.events))
        now.append(_pass(bodies))
    print(f"{args.events:,} counts, median of {args.rounds} rounds (µs per event)")
    for step in ("decode", "judge"):
        after = statistics.median(r[step] for r in now)
        line = f"{step:7s} {after:7.2f}"
        if before:
            old = statistics.median(r[step] for r in before)
            line = f"{step:7s} {old:7.2f} -> {after:7.2f}  ({old / after:.1f}x faster)"
        print(line)


if __name__ == "__main__":
    main()
