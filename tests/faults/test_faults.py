"""Faults mid-stream, counted by event id: sent, stored, dead-lettered, lost, doubled.

Real servers only, on loopback, bounded in time: PostgreSQL stopped and
started again while services consume (once for a few seconds, then six
times in quick succession), the broker paused (SIGSTOP) and resumed, and two
workers of one service in one consumer group with a rebalance mid-stream.
In every case each sent event is stored exactly once (or dead-lettered,
for the malformed ones): lost 0, doubled 0; and the hourly and daily
rollups sum to the stored counts (no count rolled up twice, none left out).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from klimapuls.core.deadletter import dead_letter_id
from klimapuls.producer import EventProducer
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack import EmbeddedBroker, EmbeddedPostgres, ensure_topics
from klimapuls.stack.runner import Stack
from klimapuls.storage import prepare_database
from tests.conftest import grant_test_producer
from tests.helpers import co2_event, wait_for
from tests.mobility.factories import count_event
from tests.stack.helpers import rollup_sums

pytestmark = pytest.mark.timeout(300)

MALFORMED = [b"{not json", b'{"schema": "mobility_count.v1"}']


def _stream(n: int) -> list[tuple[str, dict[str, Any] | bytes]]:
    """`n` events: counts of several sites and hours, some CO2 figures, bad ones."""
    events: list[tuple[str, dict[str, Any] | bytes]] = []
    for i in range(n):
        if i % 50 == 7:
            event = co2_event("101", 1990 + i % 30, "energy", i, event_id=f"f:co2:{i}")
            events.append(("co2_account", event))
        else:
            hour = f"2024-03-{1 + i // 600:02d}T{(i // 25) % 24:02d}:00:00+00:00"
            events.append(
                (
                    "mobility_count",
                    count_event(f"fault-{i % 25}", "bike", hour, i, event_id=f"f:{i}"),
                )
            )
    events += [("mobility_count", raw) for raw in MALFORMED]
    return events


@dataclass
class Count:
    """The ledger of one fault test."""

    sent: int
    stored: int
    dead_lettered: int
    doubled: int
    #: Trips in the stored counts, the hourly and the daily rollups.
    trips: tuple[int, int, int] = (0, 0, 0)

    @property
    def lost(self) -> int:
        """Sent, but neither stored nor dead-lettered."""
        return self.sent - self.stored - self.dead_lettered

    def __str__(self) -> str:
        stored, hourly, daily = self.trips
        return (
            f"sent {self.sent}, stored {self.stored}, dead-lettered "
            f"{self.dead_lettered}, lost {self.lost}, doubled {self.doubled}; "
            f"trips stored {stored}, rolled up hourly {hourly}, daily {daily}"
        )


def _count(url: str, events: list[tuple[str, dict[str, Any] | bytes]]) -> Count:
    ids = [e["event_id"] for _, e in events if isinstance(e, dict)]
    letters = [dead_letter_id(k, e) for k, e in events if isinstance(e, bytes)]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as c:
        stored = c.execute(
            "SELECT (SELECT count(DISTINCT event_id) FROM mobility_count "
            "WHERE event_id = ANY(%s)) + (SELECT count(DISTINCT event_id) "
            "FROM co2_account WHERE event_id = ANY(%s))",
            (ids, ids),
        ).fetchone()
        doubled = c.execute(
            "SELECT (SELECT count(*) - count(DISTINCT event_id) FROM mobility_count)"
            " + (SELECT count(*) - count(DISTINCT event_id) FROM co2_account)"
        ).fetchone()
        dead = c.execute(
            "SELECT count(*) FROM dead_letter WHERE dead_letter_id = ANY(%s)",
            (letters,),
        ).fetchone()
    assert stored and doubled and dead
    return Count(len(events), int(stored[0]), int(dead[0]), int(doubled[0]))


def _send(
    settings: Settings, events: list[tuple[str, dict[str, Any] | bytes]], rate: float
) -> None:
    with EventProducer(settings, name="faults") as producer:
        began = time.monotonic()
        for i, (kind, body) in enumerate(events):
            if isinstance(body, bytes):
                producer.send_raw(kind, body)
            else:
                producer.send(kind, body)
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        producer.flush()


@pytest.fixture
def own_stack(
    tmp_path: Path,
) -> Iterator[tuple[EmbeddedBroker, EmbeddedPostgres, Settings]]:
    """A broker and a PostgreSQL of this test alone, so they may be hurt."""
    broker = EmbeddedBroker(tmp_path / "tansu.log")
    broker.start()
    database = EmbeddedPostgres(tmp_path / "pg", "faults")
    url = database.start()
    prepare_database(url)
    grant_test_producer(url)  # the events say producer `pytest`
    settings = Settings(
        database_url=SecretStr(url),
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
        topic_prefix="faults-",
        topic_partitions=2,
        group_prefix="faults",
        data_dir=tmp_path / "klimapuls",
        batch_size=200,
        batch_seconds=0.2,
        kafka_session_timeout_s=6,
        kafka_heartbeat_s=1,
    )
    ensure_topics(settings)
    try:
        yield broker, database, settings
    finally:
        broker.stop()
        database.stop()


def _run(settings: Settings, *names: str) -> Stack:
    stack = Stack(settings)
    stack.start_services(names)
    return stack


def _alive(stack: Stack) -> None:
    for name, process in stack.processes.items():
        assert process.poll() is None, f"{name} stopped"


def _finish(url: str, events: list[tuple[str, dict[str, Any] | bytes]]) -> Count:
    count = wait_for(
        lambda: _count(url, events),
        lambda c: c.lost == 0,
        timeout_s=180,
    )
    assert (count.lost, count.doubled) == (0, 0), count
    assert count.dead_lettered == len(MALFORMED)
    count.trips = rollup_sums(url)
    stored_trips = sum(
        e["count"] for k, e in events if k == "mobility_count" and isinstance(e, dict)
    )
    assert count.trips == (stored_trips, stored_trips, stored_trips), count
    return count


def test_postgres_down_and_up_repeatedly_mid_stream_loses_and_doubles_nothing(
    own_stack: tuple[EmbeddedBroker, EmbeddedPostgres, Settings],
) -> None:
    _broker, database, settings = own_stack
    url = settings.require_database_url()
    stack = _run(settings, "co2", "mobility", "deadletter")
    try:
        events = _stream(3_000)
        sender = threading.Thread(target=_send, args=(settings, events, 400.0))
        sender.start()
        time.sleep(2)
        database.stop()  # once for a few seconds ...
        time.sleep(4)
        database.start()
        for _ in range(6):  # ... then six times in quick succession
            time.sleep(0.7)
            database.stop()
            time.sleep(0.5)
            database.start()
        sender.join()
        count = _finish(url, events)
        _alive(stack)
        print(f"postgres down and up: {count}")
    finally:
        stack.stop()


def test_a_paused_broker_loses_and_doubles_nothing(
    own_stack: tuple[EmbeddedBroker, EmbeddedPostgres, Settings],
) -> None:
    broker, _database, settings = own_stack
    url = settings.require_database_url()
    stack = _run(settings, "co2", "mobility", "deadletter")
    process = broker._process
    assert process is not None
    try:
        events = _stream(2_000)
        sender = threading.Thread(target=_send, args=(settings, events, 400.0))
        sender.start()
        time.sleep(2)
        os.kill(process.pid, signal.SIGSTOP)  # the broker freezes mid-stream
        time.sleep(4)
        os.kill(process.pid, signal.SIGCONT)
        sender.join()
        count = _finish(url, events)
        _alive(stack)
        print(f"broker paused: {count}")
    finally:
        stack.stop()


def test_two_workers_of_one_service_rebalance_mid_stream_and_store_each_once(
    own_stack: tuple[EmbeddedBroker, EmbeddedPostgres, Settings],
) -> None:
    _broker, _database, settings = own_stack
    url = settings.require_database_url()
    first = _run(settings, "co2", "mobility", "deadletter")
    second = _run(settings, "mobility")  # same consumer group: two workers
    third: Stack | None = None
    try:
        events = _stream(3_000)
        sender = threading.Thread(target=_send, args=(settings, events, 400.0))
        sender.start()
        time.sleep(3)
        second.stop()  # a worker leaves mid-stream: its partitions move ...
        time.sleep(2)
        third = _run(settings, "mobility")  # ... and another joins
        sender.join()
        count = _finish(url, events)
        _alive(first)
        print(f"rebalance: {count}")
    finally:
        for stack in (first, second, third):
            if stack is not None:
                stack.stop()
