"""A year of 15-minute counts backfilled into a running stack, then imported again.

    python bench/backfill.py [--rows 1000000] [--sites 30] [--json]
    klimapuls bench --backfill ROWS [...]   (the same, from a checkout)

On one fresh embedded broker and PostgreSQL with the services running:

1. writes a `traffic-count` file (Danish headers, local times, the repeated
   autumn hour twice in file order, `--sites` sites over consecutive
   quarter-hours), ROWS rows in all;
2. runs `klimapuls import traffic-count FILE` as a user would (a process of
   its own) and measures the import's time and the time until every row is
   stored or dead-lettered (`events_per_s`, end to end);
3. imports the same file again and counts what that stored: `reimport_new`
   must be 0 (the importer's ids come from the content; the services judge
   a re-sent fact a duplicate).

`lost` (valid rows neither stored nor dead-lettered) and `duplicates` (an
event id stored twice) are counted from the database, never estimated.
Peak RSS is sampled per process, the importer's included, and the
launcher's on its own (without the services it forked). Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg
from kafka import KafkaProducer
from pydantic import SecretStr

from klimapuls.core.reference import municipality_codes
from klimapuls.importers.table import COPENHAGEN
from klimapuls.process import no_interruptions, stops_not_dropped
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack import EmbeddedBroker, EmbeddedPostgres, ensure_topics
from klimapuls.stack.launcher import launcher_pid
from klimapuls.stack.runner import Stack
from klimapuls.storage import prepare_database

SERVICES = ("deadletter", "mobility", "targets")
PRODUCER = "klimapuls-import"
#: The first quarter-hour of the file (UTC); the clocks change twice after it.
START = datetime(2025, 1, 1, tzinfo=UTC)
_POLL_S = 0.25


@dataclass
class Result:
    """What `--json` prints."""

    rows: int
    sites: int
    import_s: float
    import_rows_per_s: float
    end_to_end_s: float
    events_per_s: float
    stored: int
    dead_lettered: int
    lost: int
    duplicates: int
    reimport_s: float
    reimport_new: int
    peak_rss_mb: dict[str, float] = field(default_factory=dict)


def write_counts(path: Path, rows: int, sites: int) -> None:
    """ROWS rows of 15-minute counts: SITES sites, consecutive quarter-hours."""
    codes = municipality_codes()
    per_site = -(-rows // sites)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, delimiter=";")
        out.writerow(
            ["tællested", "kommune", "tid", "transportmiddel", "antal", "minutter"]
        )
        written = 0
        for step in range(per_site):
            moment = START + timedelta(minutes=15 * step)
            # Local wall time without an offset, as municipal exports have it:
            # the repeated autumn hour comes twice, summer time first.
            local = moment.astimezone(COPENHAGEN).strftime("%Y-%m-%d %H:%M")
            for site in range(sites):
                if written == rows:
                    return
                mode = "cykel" if site % 3 == 0 else "bil"
                count = 5 + (step * 7 + site * 13) % 90
                out.writerow(
                    [
                        f"bench-{site:03d}",
                        codes[site % len(codes)],
                        local,
                        mode,
                        count,
                        15,
                    ]
                )
                written += 1


def _psql(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _stored(url: str) -> tuple[int, int]:
    """(distinct event ids, rows) of the importer's counts."""
    with psycopg.connect(_psql(url)) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT event_id), count(*) FROM mobility_count "
            "WHERE producer = %s AND event_id NOT LIKE 'bench-marker:%%'",
            (PRODUCER,),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


class _Landed:
    """The importer's counts stored so far, read incrementally (by `seq`).

    A poll must not load the server it waits for: it counts only the rows
    above the highest `seq` seen (count writers commit in `seq` order, under
    the count lock). The final figures are read whole (`_stored`).
    """

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(_psql(url), autocommit=True)
        self.seq = 0
        self.rows = 0

    def poll(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FILTER (WHERE producer = %s "
            "AND event_id NOT LIKE 'bench-marker:%%'), max(seq) "
            "FROM mobility_count WHERE seq > %s",
            (PRODUCER, self.seq),
        ).fetchone()
        if row is not None and row[1] is not None:
            self.rows += int(row[0])
            self.seq = int(row[1])
        return self.rows


def _dead_lettered(url: str) -> int:
    with psycopg.connect(_psql(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM dead_letter WHERE origin LIKE 'backfill.csv:%'"
        ).fetchone()
    return int(row[0]) if row else 0


def _markers_stored(settings: Settings, url: str, tag: str) -> None:
    """One fresh count on every partition, waited for: all before is consumed.

    The mobility service reads each partition in order, so once the marker
    of every partition is stored, everything sent before it was handled.
    """
    producer = KafkaProducer(**settings.kafka.kafka_python_options(), acks="all")
    topic = settings.topics.mobility_count
    partitions = sorted(producer.partitions_for(topic) or {0})
    ids = []
    for partition in partitions:
        event_id = f"bench-marker:{tag}:{partition}"
        body = {
            "schema": "mobility_count.v1",
            "event_id": event_id,
            "producer": PRODUCER,
            "reported_at": "2026-01-01T00:00:00+00:00",
            "site_id": f"bench-marker-{tag}",
            "municipality_code": "101",
            "mode": "car",
            "direction": str(partition),
            "interval_start": "2025-12-31T00:00:00+00:00",
            "interval_end": "2025-12-31T00:15:00+00:00",
            "count": 1,
        }
        producer.send(topic, json.dumps(body).encode(), partition=partition)
        ids.append(event_id)
    producer.flush(30)
    producer.close()
    deadline = time.monotonic() + 300
    with psycopg.connect(_psql(url), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM mobility_count WHERE event_id = ANY(%s)", (ids,)
            ).fetchone()
            if row and int(row[0]) == len(ids):
                return
            time.sleep(0.2)
    raise SystemExit(f"markers {ids} were not stored within 300 s")


class Peak(threading.Thread):
    """Peak RSS of named processes (and their children), sampled every 0.5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.pids: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        while not self.stopping.wait(0.5):
            for name, pid in list(self.pids.items()):
                try:
                    root = psutil.Process(pid)
                    # The launcher's children are the services: counted apart.
                    below = [] if name == "launcher" else root.children(True)
                    rss = max(p.memory_info().rss for p in [root, *below])
                except psutil.Error:
                    continue
                self.peak[name] = max(self.peak.get(name, 0), rss)

    def mb(self) -> dict[str, float]:
        """Peak RSS in MiB per name."""
        return {k: round(v / 2**20, 1) for k, v in sorted(self.peak.items())}


def _import(settings: Settings, url: str, path: Path, peak: Peak) -> tuple[float, str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.require_bootstrap_servers(),
        "DATABASE_URL": url,
        "KLIMAPULS_TOPIC_PREFIX": settings.topic_prefix,
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "100",
    }
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "klimapuls", "import", "traffic-count", str(path)],
        env=env,
        cwd=path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak.pids["import"] = process.pid
    output, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the import failed ({process.returncode}):\n{output}")
    return time.monotonic() - began, output


def run(rows: int, sites: int, timeout_s: float, say: Any) -> Result:
    """Start a fresh embedded stack and its services, import twice, stop."""
    with tempfile.TemporaryDirectory(prefix="klimapuls-backfill-") as tmp:
        folder = Path(tmp)
        broker = EmbeddedBroker(folder / "tansu.log")
        database = EmbeddedPostgres(folder / "postgres", "bench")
        stack: Stack | None = None
        peak = Peak()
        try:
            broker.start()
            url = database.start()
            prepare_database(url)
            settings = Settings(
                database_url=SecretStr(url),
                kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
                topic_prefix="backfill-",
                data_dir=folder,
                kafka_session_timeout_s=6,
                kafka_heartbeat_s=1,
            )
            ensure_topics(settings)
            path = folder / "backfill.csv"
            write_counts(path, rows, sites)
            say(f"wrote {rows:,} rows ({path.stat().st_size / 2**20:.0f} MB)")
            stack = Stack(settings)
            stack.start_services(SERVICES)
            peak.pids.update({n: p.pid for n, p in stack.processes.items()})
            launcher = launcher_pid()  # forked the services, holds their code
            if launcher is not None:
                peak.pids["launcher"] = launcher
            peak.start()
            _markers_stored(settings, url, "ready")
            say("services running; importing")

            began = time.monotonic()
            import_s, output = _import(settings, url, path, peak)
            say(f"  import done in {import_s:.1f} s: {output.strip().splitlines()[-1]}")
            deadline = began + timeout_s
            stored = dead = 0
            landed = _Landed(url)
            while time.monotonic() < deadline:
                stored = landed.poll()
                dead = _dead_lettered(url)
                say(f"  {stored + dead:,}/{rows:,} stored or dead-lettered")
                if stored + dead >= rows:
                    break
                time.sleep(_POLL_S)
            end_to_end = time.monotonic() - began
            landed.conn.close()
            distinct, total = _stored(url)

            say("importing the same file again")
            again = time.monotonic()
            _import(settings, url, path, peak)
            _markers_stored(settings, url, "again")
            reimport_s = time.monotonic() - again
            distinct_after, total_after = _stored(url)
            peak.stopping.set()
            return Result(
                rows=rows,
                sites=sites,
                import_s=round(import_s, 1),
                import_rows_per_s=round(rows / import_s, 1),
                end_to_end_s=round(end_to_end, 1),
                events_per_s=round(rows / end_to_end, 1),
                stored=distinct,
                dead_lettered=dead,
                lost=max(rows - distinct - dead, 0),
                duplicates=total_after - distinct_after,
                reimport_s=round(reimport_s, 1),
                reimport_new=total_after - total,
                peak_rss_mb=peak.mb(),
            )
        finally:
            peak.stopping.set()
            with no_interruptions():  # what it started is stopped whole
                if stack is not None:
                    stack.stop()
                broker.stop()
                database.stop()


def main(argv: list[str] | None = None) -> int:
    """Run and print figures (a table, or one JSON object with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.rows < 100 or args.sites < 1:
        parser.error("--rows must be at least 100 and --sites at least 1")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    try:
        with stops_not_dropped():  # a Ctrl-C is never lost to a finalizer
            result = run(args.rows, args.sites, args.timeout, say)
    except KeyboardInterrupt:
        say("interrupted: the stack it started is stopped, no figures")
        return 130
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        for key, value in asdict(result).items():
            print(f"{key:>18}: {value}")
    clean = result.lost == 0 and result.duplicates == 0 and result.reimport_new == 0
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
