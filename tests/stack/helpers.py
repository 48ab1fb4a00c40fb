"""Run `klimapuls up` as a user would, signal it, and count events by id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer

from klimapuls.simulator import DEFAULT_START, malformed_events, simulate

# A process started from a non-interactive shell may ignore SIGINT; reset it so
# that Ctrl-C (SIGINT to the process group) reaches `up` as in a terminal.
_WRAPPER = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'klimapuls', *sys.argv[1:]])"
)

_TABLES = {
    "co2_account": "co2_account",
    "target": "target_version",
    "fleet_status": "fleet_status",
    "mobility_count": "mobility_count",
    "initiative_status": "initiative_status_report",
}


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
        and not k.startswith("KLIMAPULS_")
    }
    env["COLUMNS"] = "200"
    return env


class Up:
    """One `klimapuls up` in its own process group, its output in a file."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.log = folder / f"up-{time.monotonic_ns()}.out"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WRAPPER, "up", *args],
                cwd=folder,
                env=clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, text: str, timeout_s: float = 120) -> float:
        started = time.monotonic()
        while text not in self.output:
            assert self.process.poll() is None, self.output
            assert time.monotonic() - started < timeout_s, self.output
            time.sleep(0.2)
        return time.monotonic() - started

    def state(self) -> dict[str, Any]:
        return json.loads((self.folder / ".klimapuls" / "stack.json").read_text())

    def signal(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def wait(self, timeout_s: float = 120) -> int:
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            raise AssertionError(self.output) from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            self.wait()


def valid_events(
    seed: int, count: int, skip: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    """`count` valid simulated events (all families), after `skip` of them."""
    # Targets are left out: the seed targets are duplicates of `db upgrade`s.
    stream = (e for e in simulate(seed) if not e.malformed and e.kind != "target")
    return [(e.kind, e.body) for e in islice(stream, skip, skip + count)]  # type: ignore[misc]


def malformed(seed: int, count: int, skip: int = 0) -> list[tuple[str, bytes, str]]:
    """`count` malformed bodies (every defect in turn): kind, raw bytes, and the
    `dead_letter_id` a service gives each."""
    stream = islice(malformed_events(seed, DEFAULT_START), skip, skip + count)
    return [(e.kind, e.body, str(e.dead_letter_id)) for e in stream]  # type: ignore[misc]


class Sender:
    """Sends events and records the ids the broker acknowledged."""

    def __init__(self, servers: str) -> None:
        self.producer = KafkaProducer(
            bootstrap_servers=servers, acks="all", linger_ms=5, retries=3
        )
        self.acked: set[str] = set()
        self.origins: dict[str, str] = {}
        self._lock = threading.Lock()

    def send(self, events: list[tuple[str, dict[str, Any]]], topic_of: Any) -> None:
        for kind, body in events:
            event_id = body["event_id"]
            future = self.producer.send(topic_of(kind), json.dumps(body).encode())
            future.add_callback(lambda _m, i=event_id: self._ack(i))

    def send_raw(self, messages: list[tuple[str, bytes, str]], topic_of: Any) -> None:
        """Send raw bodies as they are, recorded by their id (the third item)
        and where the broker put them (`origins`: topic:partition:offset)."""
        for kind, raw, key in messages:
            future = self.producer.send(topic_of(kind), raw)
            future.add_callback(lambda m, i=key: self._ack(i, m))

    def _ack(self, event_id: str, metadata: Any = None) -> None:
        with self._lock:
            self.acked.add(event_id)
            if metadata is not None:
                self.origins[event_id] = (
                    f"{metadata.topic}:{metadata.partition}:{metadata.offset}"
                )

    def close(self) -> None:
        try:
            self.producer.flush(30)
        finally:
            self.producer.close(timeout=5)


def topic_of(kind: str) -> str:
    return kind.replace("_", "-")


def stored(database_url: str, event_ids: set[str]) -> dict[str, int]:
    """How many rows each of `event_ids` has across the event tables."""
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    counts: dict[str, int] = {}
    with psycopg.connect(conninfo) as conn:
        for table in _TABLES.values():
            rows = conn.execute(
                f"SELECT event_id, count(*) FROM {table} "
                "WHERE event_id = ANY(%s) GROUP BY event_id",
                (list(event_ids),),
            ).fetchall()
            for event_id, n in rows:
                counts[event_id] = counts.get(event_id, 0) + n
    return counts


def dead_lettered(
    database_url: str, keys: set[str], by: str = "dead_letter_id"
) -> dict[str, int]:
    """How many `dead_letter` rows each of `keys` has, keyed `by` a column
    (`dead_letter_id`, `origin`: topic:partition:offset, or `event_id`)."""
    assert by in ("dead_letter_id", "origin", "event_id"), by
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            f"SELECT {by}, count(*) FROM dead_letter "
            f"WHERE {by} = ANY(%s) GROUP BY {by}",
            (list(keys),),
        ).fetchall()
    return dict(rows)


def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one SQL query on the stack's database."""
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        return conn.execute(sql, params or None).fetchall()


def wait_stored(
    database_url: str,
    event_ids: set[str],
    timeout_s: float,
    count: Callable[[str, set[str]], dict[str, int]] = stored,
) -> dict[str, int]:
    """`count` (default: `stored`) once every id has a row, or at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = count(database_url, event_ids)
        if len(counts) >= len(event_ids) or time.monotonic() > deadline:
            return counts
        time.sleep(1)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_ROLLUP_SUMS = """
SELECT (SELECT coalesce(sum(count), 0) FROM mobility_count WHERE is_current),
       (SELECT coalesce(sum(trips), 0) FROM mobility_hourly),
       (SELECT coalesce(sum(trips), 0) FROM mobility_daily)
"""


def rollup_sums(database_url: str, timeout_s: float = 60) -> tuple[int, int, int]:
    """Trips in the current counts, the hourly and the daily rollups, once the
    rollups caught up (or at the timeout): equal unless a count was rolled
    up twice or not at all."""
    deadline = time.monotonic() + timeout_s
    while True:
        stored, hourly, daily = (int(v) for v in query(database_url, _ROLLUP_SUMS)[0])
        if stored == hourly == daily or time.monotonic() > deadline:
            return stored, hourly, daily
        time.sleep(1)
