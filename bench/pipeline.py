"""The whole pipeline against the machine's own ceiling, on the embedded stack.

    python bench/pipeline.py [--events N] [--live-rate R] [--live-seconds S] [--json]
    klimapuls bench [...]          (the same, from a checkout)

Phases, in one run, on one fresh embedded broker and PostgreSQL:

1. *backlog*: N events of a realistic mix (about 95 % mobility counts, 4 %
   fleet snapshots, 1 % CO2 accounts and targets, 0.5 % malformed, a few
   restatements) are in the topics before the services start; the time from
   asking the stack to start them (whatever that costs counts: the
   launcher's imports) until every event is stored or dead-lettered gives
   `events_per_s`.
2. *ceiling*: a plain consumer (aiokafka) reads the same topics and writes the
   same count rows with binary COPY into a table of the same PostgreSQL:
   `ceiling_events_per_s`; `ratio` = backlog over ceiling.
3. *live*: new events offered at a steady rate; latency from send to the row's
   `received_at` (the storing transaction's start, a few ms before its
   commit), p50 and p99.

`lost` (sent, neither stored nor dead-lettered) and `duplicates` (an event id
stored twice) are counted from the database by event id, never estimated;
both must be 0. Peak RSS is sampled per process (services, broker,
PostgreSQL backends). Figures are printed, never asserted: the CI smoke test
runs a small N and checks only `lost` and `duplicates`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import psutil
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

from klimapuls.core.reference import seed_target_events
from klimapuls.process import no_interruptions, stops_not_dropped
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.simulator import (
    SimulatedEvent,
    co2_events,
    fleet_events,
    malformed_events,
    mobility_events,
)
from klimapuls.stack import EmbeddedBroker, EmbeddedPostgres, ensure_topics
from klimapuls.stack.launcher import launcher_pid
from klimapuls.stack.runner import Stack
from klimapuls.storage import prepare_database

SERVICES = ("co2", "deadletter", "fleet", "initiatives", "mobility", "targets")
#: Where each family's events end up (table, id column).
STORED_IN = {
    "co2_account": ("co2_account", "event_id"),
    "target": ("target_version", "event_id"),
    "fleet_status": ("fleet_status", "event_id"),
    "mobility_count": ("mobility_count", "event_id"),
    "dead_letter": ("dead_letter", "dead_letter_id"),
}
#: How often the ledger looks for new rows: the backlog's end is seen this
#: late at most (a poll reads only what is new, so it stays light).
_POLL_S = 0.1


@dataclass
class Result:
    """What `--json` prints."""

    events: int
    events_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    ceiling_events_per_s: float
    ratio: float
    peak_rss_mb: dict[str, float]
    lost: int
    duplicates: int
    backlog_s: float = 0.0
    first_row_s: float | None = None
    #: Seconds from the services' start until the rollups held every stored
    #: count (the boards caught up with the backlog); the ceiling is measured
    #: after that, on a machine the services no longer load.
    derived_s: float | None = None
    live_events: int = 0
    live_rate: float = 0.0
    mix: dict[str, int] = field(default_factory=dict)
    #: Seconds per stage and worker over the whole run, from the services'
    #: own `stages` log lines (see `klimapuls.streaming.StageClock`).
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    #: CPU seconds per process (children included) while the backlog drained,
    #: and the same per event in µs: where the two cores went.
    backlog_cpu_s: dict[str, float] = field(default_factory=dict)
    cpu_us_per_event: float = 0.0
    #: Worker processes of the mobility service (`mobility_worker_count`).
    mobility_workers: int = 1


# --- the event mix ------------------------------------------------------------


def _fleet(seed: int, start: date, n: int) -> Iterator[SimulatedEvent]:
    """`n` fleet snapshots: the simulator's, then copies on more garages."""
    base = [e for e in fleet_events(seed, start) if isinstance(e.body, dict)]
    for i, event in enumerate(islice(cycle(base), n)):
        round_ = i // len(base)
        if round_ == 0:
            yield event
            continue
        body = dict(event.body)  # type: ignore[arg-type]
        body["event_id"] = f"{body['event_id']}:bench{round_}"
        body["garage"] = f"{body.get('garage') or body.get('contract')} B{round_}"
        body.pop("contract", None)
        yield SimulatedEvent("fleet_status", body)


def build_mix(
    n: int, seed: int = 2045, start: date = date(2026, 6, 1)
) -> list[SimulatedEvent]:
    """N events: ~95 % counts, 4 % fleet, 1 % CO2 and targets, 0.5 % malformed."""
    counts = max(n - int(n * 0.04) - int(n * 0.01) - int(n * 0.005), 1)
    sources: list[list[SimulatedEvent]] = [
        list(islice(mobility_events(seed, start), counts)),
        list(_fleet(seed, start, int(n * 0.04))),
        [e for e in co2_events(seed, start) if not e.malformed][: int(n * 0.009)],
        [SimulatedEvent("target", e) for e in seed_target_events()],
        list(islice(malformed_events(seed, start), int(n * 0.005))),
    ]
    # Interleave proportionally, so every batch sees the mix.
    total = sum(len(s) for s in sources)
    ordered = sorted(
        (
            (i / len(source), k, event)
            for k, source in enumerate(sources)
            for i, event in enumerate(source)
        ),
        key=lambda t: (t[0], t[1]),
    )
    return [event for _, _, event in ordered][:total]


def _expected(events: Sequence[SimulatedEvent]) -> list[tuple[str, str]]:
    pairs = []
    for event in events:
        if event.malformed:
            pairs.append(("dead_letter", str(event.dead_letter_id)))
        else:
            pairs.append((event.kind, str(event.event_id)))
    return pairs


# --- sending ------------------------------------------------------------------


async def _send(
    settings: Settings,
    events: Sequence[SimulatedEvent],
    rate: float | None = None,
) -> dict[str, float]:
    """Send events (as fast as possible, or at `rate`/s); id -> send time."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.require_bootstrap_servers(),
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    sent: dict[str, float] = {}
    began = time.monotonic()
    try:
        for i, event in enumerate(events):
            if rate is not None:
                delay = began + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            body = (
                event.body
                if isinstance(event.body, bytes)
                else json.dumps(event.body).encode()
            )
            await producer.send(settings.topics.for_kind(event.kind), body)
            if event.event_id is not None:
                sent[event.event_id] = time.time()
        await producer.flush()
    finally:
        await producer.stop()
    return sent


# --- counting by event id -----------------------------------------------------


def _psql(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class Ledger:
    """The ids still expected, per family; found ones are struck off as they land.

    Polling must not load the machine it measures: new counts (~95 % of a
    backlog) are only counted, above the highest `seq` seen (count writers
    commit in `seq` order: they hold the count lock until their commit),
    and the small tables' ids are read whole. Once the counts add up, the
    ids decide (`verify`, by id in every table): a count that is not one
    of the mix cannot stand in for one that is, and `lost` never rests on
    the counting.
    """

    def __init__(
        self, url: str, expected: Sequence[tuple[str, str]], since_seq: int = 0
    ) -> None:
        """`since_seq`: the counts stored before the events expected were sent."""
        self.conn = psycopg.connect(_psql(url), autocommit=True)
        self.expected: dict[str, set[str]] = {kind: set() for kind in STORED_IN}
        for kind, event_id in expected:
            self.expected[kind].add(event_id)
        self.total = len(expected)
        self.pending = self.total
        self._seq = since_seq
        #: Counts stored since the last `verify` (or the start).
        self._counted = 0

    def _count_new(self) -> None:
        # Bounded above by the sequence: open-ended, `seq > x` on partitions
        # not yet analyzed (a backlog's) was planned as a parallel scan of
        # every count, ~30 ms of the server's CPU at each poll by the end.
        count, high = self.conn.execute(
            "SELECT count(*), max(seq) FROM mobility_count WHERE seq > %s "
            "AND seq <= (SELECT last_value FROM mobility_count_seq)",
            (self._seq,),
        ).fetchone() or (0, None)
        self._counted += int(count)
        self._seq = int(high) if high is not None else self._seq

    def last_seq(self) -> int:
        """The `seq` of the last count stored."""
        row = self.conn.execute("SELECT max(seq) FROM mobility_count").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def poll(self) -> int:
        """How many are still pending: counts by number, the rest by id."""
        for kind, (table, column) in STORED_IN.items():
            if kind == "mobility_count":
                self._count_new()
            elif self.expected[kind]:
                found = self.conn.execute(f"SELECT {column} FROM {table}")
                self.expected[kind].difference_update(r[0] for r in found)
        counts = len(self.expected["mobility_count"])
        self.pending = sum(
            len(ids) for kind, ids in self.expected.items() if kind != "mobility_count"
        ) + max(counts - self._counted, 0)
        return self.pending

    def verify(self) -> int:
        """Look every pending id up by id; returns how many are truly missing."""
        for kind, (table, column) in STORED_IN.items():
            ids = sorted(self.expected[kind])
            if ids:
                rows = self.conn.execute(
                    f"SELECT {column} FROM {table} WHERE {column} = ANY(%s)", (ids,)
                )
                self.expected[kind].difference_update(r[0] for r in rows)
        self._counted = 0  # the ids left are counted afresh
        self.pending = sum(len(ids) for ids in self.expected.values())
        return self.pending

    def missing(self, most: int = 5) -> list[tuple[str, str]]:
        """A few ids still pending, to name in the report."""
        return sorted((k, i) for k, ids in self.expected.items() for i in ids)[:most]

    def duplicates(self) -> int:
        """Event ids stored more than once, over every table."""
        found = 0
        for kind, (table, column) in STORED_IN.items():
            if kind == "dead_letter":
                continue
            row = self.conn.execute(
                f"SELECT count(*) - count(DISTINCT {column}) FROM {table}"
            ).fetchone()
            found += int(row[0]) if row else 0
        return found

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


# --- memory -------------------------------------------------------------------


class PeakMemory(threading.Thread):
    """Samples the RSS of the services, the broker and PostgreSQL."""

    def __init__(self, roots: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.peak: Counter[str] = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        """Sample every 0.5 s until stopped."""
        while not self.stopping.wait(0.5):
            for name, procs in self._trees().items():
                rss = max((_rss_of(p) for p in procs), default=0)
                self.peak[name] = max(self.peak[name], rss)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far per process name (children included)."""
        return {
            name: sum(_cpu_of(p) for p in procs)
            for name, procs in self._trees().items()
        }

    def _trees(self) -> dict[str, list[psutil.Process]]:
        """Each root with its descendants, from one pass over the processes.

        `children(recursive=True)` reads every process of the machine once
        per root: with ten roots, twice a second, the harness took CPU
        from the services it measures.
        """
        below: dict[int, list[psutil.Process]] = {}
        for process in psutil.process_iter(["ppid"]):
            below.setdefault(process.info["ppid"], []).append(process)
        trees: dict[str, list[psutil.Process]] = {}
        # The launcher forks the services: each is counted as its own root.
        roots = set(self.roots.values())
        for name, pid in self.roots.items():
            try:
                found, pending = [psutil.Process(pid)], [pid]
            except psutil.Error:
                continue
            while pending:
                for child in below.get(pending.pop(), []):
                    if child.pid in roots:
                        continue
                    found.append(child)
                    pending.append(child.pid)
            trees[name] = found
        return trees

    def mb(self) -> dict[str, float]:
        """Peak RSS in MiB per process name."""
        return {k: round(v / 2**20, 1) for k, v in sorted(self.peak.items())}


def _rss_of(process: psutil.Process) -> int:
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def _cpu_of(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


# --- the ceiling --------------------------------------------------------------


def _count_row(value: bytes) -> tuple[Any, ...] | None:
    """The columns of a count event, or None for anything else (no validation)."""
    try:
        e = json.loads(value)
        return (
            e["event_id"],
            e["site_id"],
            e["municipality_code"],
            e["mode"],
            e["direction"],
            datetime.fromisoformat(e["interval_start"]),
            datetime.fromisoformat(e["interval_end"]),
            int(e["count"]),
            int(e.get("revision", 0)),
            e["producer"],
            datetime.fromisoformat(e["reported_at"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


async def _ceiling(settings: Settings, url: str, n: int) -> float:
    """Events/s of a plain consumer with binary COPY of the count rows."""
    conn = await psycopg.AsyncConnection.connect(_psql(url), autocommit=True)
    await conn.execute(
        "CREATE UNLOGGED TABLE IF NOT EXISTS bench_ceiling (event_id text, "
        "site_id text, municipality_code text, mode text, direction text, "
        "interval_start timestamptz, interval_end timestamptz, count bigint, "
        "revision integer, producer text, reported_at timestamptz)"
    )
    topics = settings.topics
    consumer = AIOKafkaConsumer(
        topics.mobility_count,
        topics.fleet_status,
        topics.co2_account,
        topics.target,
        topics.initiative_status,
        bootstrap_servers=settings.require_bootstrap_servers(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    seen = 0
    began = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=2000, max_records=20_000)
            if not batch:
                break
            began = began or time.monotonic()
            rows = []
            for records in batch.values():
                for record in records:
                    seen += 1
                    row = _count_row(record.value)
                    if row is not None:
                        rows.append(row)
            async with (
                conn.cursor() as cur,
                cur.copy("COPY bench_ceiling FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(
                    [
                        "text",
                        "text",
                        "text",
                        "text",
                        "text",
                        "timestamptz",
                        "timestamptz",
                        "int8",
                        "int4",
                        "text",
                        "timestamptz",
                    ]
                )
                for row in rows:
                    await copy.write_row(row)
    finally:
        await consumer.stop()
        await conn.execute("DROP TABLE IF EXISTS bench_ceiling")
        await conn.close()
    elapsed = time.monotonic() - (began or time.monotonic())
    return seen / elapsed if elapsed > 0 else 0.0


# --- where the time went -----------------------------------------------------

_STAGES = re.compile(r"stages (\S+): (\d+) events, (\d+) batches, [\d.]+ s: (.*)")


def stage_sums(log_dir: Path) -> dict[str, dict[str, float]]:
    """Seconds per stage per worker, summed over the services' log lines."""
    sums: dict[str, Counter[str]] = {}
    for log in sorted(log_dir.glob("*.log")):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            found = _STAGES.search(line)
            if found is None:
                continue
            worker = sums.setdefault(found[1], Counter())
            worker["events"] += int(found[2])
            worker["batches"] += int(found[3])
            for pair in found[4].split():
                name, _, value = pair.partition("=")
                worker[name] += float(value)
    return {w: {k: round(v, 2) for k, v in c.items()} for w, c in sorted(sums.items())}


# --- the run ------------------------------------------------------------------


def _wait(
    ledger: Ledger,
    timeout_s: float,
    say: Any,
    counted: Callable[[], None] = lambda: None,
    began: float | None = None,
) -> tuple[float, float | None]:
    """Seconds from `began` (or now) until nothing is pending; and to the first row.

    `counted` is called when everything adds up, before the ids are looked
    up (what the services spent is read there, not the lookup's cost).
    """
    began = began if began is not None else time.monotonic()
    said = time.monotonic()
    already = ledger.total - ledger.poll()
    first = ended = None
    while time.monotonic() - began < timeout_s:
        pending = ledger.poll()
        done = ledger.total - pending
        if first is None and done > already:
            first = time.monotonic() - began
        if pending == 0:
            # Everything counted: the ids decide, outside the time taken.
            ended = time.monotonic()
            counted()
            pending = ledger.verify()
            done = ledger.total - pending
        if time.monotonic() - said >= 1.0 or pending == 0:
            say(f"  {done:,}/{ledger.total:,} stored or dead-lettered")
            said = time.monotonic()
        if pending == 0:
            break
        time.sleep(_POLL_S)
    else:
        ledger.verify()
        ended = None
    return (ended or time.monotonic()) - began, first


_ROLLED_UP = """
SELECT (SELECT watermark FROM mobility_rollup_state WHERE name = 'rollups')
    >= (SELECT coalesce(max(seq), 0) FROM mobility_count)
"""


def _wait_derived(url: str, began: float, timeout_s: float) -> float | None:
    """Seconds since `began` until the rollups cover every stored count."""
    with psycopg.connect(_psql(url), autocommit=True) as conn:
        while time.monotonic() - began < timeout_s:
            row = conn.execute(_ROLLED_UP).fetchone()
            if row is None or row[0] is None:
                return None  # no rollup tables (TimescaleDB's aggregates)
            if row[0]:
                return time.monotonic() - began
            time.sleep(_POLL_S)
    return None


def _latencies(url: str, sent: dict[str, float]) -> list[float]:
    with psycopg.connect(_psql(url)) as conn:
        rows = conn.execute(
            "SELECT event_id, extract(epoch FROM received_at) FROM mobility_count "
            "WHERE event_id = ANY(%s) UNION ALL SELECT event_id, "
            "extract(epoch FROM received_at) FROM fleet_status "
            "WHERE event_id = ANY(%s)",
            (list(sent), list(sent)),
        ).fetchall()
    return [(float(t) - sent[eid]) * 1000 for eid, t in rows if eid in sent]


def run(
    n: int, live_rate: float, live_seconds: float, timeout_s: float, say: Any
) -> Result:
    """Start a fresh embedded stack, run the three phases, stop it."""
    with tempfile.TemporaryDirectory(prefix="klimapuls-bench-") as tmp:
        folder = Path(tmp)
        broker = EmbeddedBroker(folder / "tansu.log")
        database = EmbeddedPostgres(folder / "postgres", "bench")
        stack: Stack | None = None
        try:
            broker.start()
            url = database.start()
            prepare_database(url)
            settings = Settings(
                database_url=SecretStr(url),
                kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
                topic_prefix="bench-",
                data_dir=folder,
                kafka_session_timeout_s=6,
                kafka_heartbeat_s=1,
            )
            ensure_topics(settings)
            mix = build_mix(n)
            say(f"sending a backlog of {len(mix):,} events")
            asyncio.run(_send(settings, mix))
            ledger = Ledger(url, _expected(mix))
            # The harness's own objects (the mix, the ledger's ids) out of its
            # collector's way: full collections through them took CPU from
            # the services it measures.
            gc.collect()
            gc.freeze()
            servers = {}
            if broker._process is not None:
                servers["broker"] = broker._process.pid
            postmaster = database.running_pid()
            if postmaster is not None:
                servers["postgres"] = postmaster
            memory = PeakMemory(servers)
            # The services' processes are new: all they spend counts, from
            # the launcher's imports on (`klimapuls.stack.launcher`).
            cpu_before = memory.cpu()
            say("starting the services; draining the backlog")
            started = time.monotonic()
            stack = Stack(settings)
            stack.start_services(SERVICES)
            memory.roots.update({n: p.pid for n, p in stack.processes.items()})
            launcher = launcher_pid()
            if launcher is not None:
                memory.roots["launcher"] = launcher
            memory.start()
            spent: list[dict[str, float]] = []
            backlog_s, first_row = _wait(
                ledger, timeout_s, say, lambda: spent.append(memory.cpu()), started
            )
            cpu_after = spent[-1] if spent else memory.cpu()
            derived_s = _wait_derived(url, started, timeout_s)
            backlog_cpu = {
                name: round(cpu_after[name] - cpu_before.get(name, 0.0), 2)
                for name in sorted(cpu_after)
            }
            backlog_lost = ledger.pending
            if backlog_lost:
                say(f"  not stored after {timeout_s:.0f} s: {ledger.missing()}")
            say("ceiling: a plain consumer with binary COPY of the same events")
            ceiling = asyncio.run(_ceiling(settings, url, len(mix)))
            live = [
                e
                for e in build_mix(
                    int(live_rate * live_seconds), seed=7, start=date(2026, 9, 1)
                )
                if not e.malformed
            ]
            say(f"live: {len(live):,} events offered at {live_rate:,.0f}/s")
            since = ledger.last_seq()
            sent = asyncio.run(_send(settings, live, rate=live_rate))
            live_ledger = Ledger(url, _expected(live), since_seq=since)
            _wait(live_ledger, timeout_s, say)
            lost = backlog_lost + live_ledger.pending
            duplicates = ledger.duplicates()
            latencies = sorted(_latencies(url, sent))
            memory.stopping.set()
            live_ledger.close()
            ledger.close()
            rate = len(mix) / backlog_s if backlog_s > 0 else 0.0
            peaks = memory.mb()
            return Result(
                events=len(mix),
                events_per_s=round(rate, 1),
                p50_ms=round(statistics.median(latencies), 1) if latencies else None,
                p99_ms=round(latencies[int(len(latencies) * 0.99) - 1], 1)
                if latencies
                else None,
                ceiling_events_per_s=round(ceiling, 1),
                ratio=round(rate / ceiling, 3) if ceiling else 0.0,
                peak_rss_mb=peaks,
                lost=lost,
                duplicates=duplicates,
                backlog_s=round(backlog_s, 2),
                first_row_s=round(first_row, 2) if first_row is not None else None,
                derived_s=round(derived_s, 2) if derived_s is not None else None,
                live_events=len(live),
                live_rate=live_rate,
                mix=dict(
                    Counter(e.kind if not e.malformed else "malformed" for e in mix)
                ),
                stages=stage_sums(stack.log_dir),
                backlog_cpu_s=backlog_cpu,
                cpu_us_per_event=round(sum(backlog_cpu.values()) / len(mix) * 1e6, 1),
                mobility_workers=settings.mobility_worker_count(os.cpu_count()),
            )
        finally:
            with no_interruptions():  # what it started is stopped whole
                if stack is not None:
                    stack.stop()
                broker.stop()
                database.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run and print figures (a table, or one JSON object with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--live-rate", type=float, default=5_000.0)
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.events < 100 or args.live_rate <= 0 or args.live_seconds <= 0:
        parser.error("--events must be at least 100; rates and seconds positive")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    try:
        with stops_not_dropped():  # a Ctrl-C is never lost to a finalizer
            result = run(
                args.events, args.live_rate, args.live_seconds, args.timeout, say
            )
    except KeyboardInterrupt:
        say("interrupted: the stack it started is stopped, no figures")
        return 130
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        for key, value in asdict(result).items():
            print(f"{key:>22}: {value}")
    return 0 if result.lost == 0 and result.duplicates == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
