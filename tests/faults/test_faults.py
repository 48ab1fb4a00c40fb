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
from sqlalchemy import Engine, create_engine, text

from klimapuls.core.deadletter import dead_letter_id
from klimapuls.producer import EventProducer
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack import EmbeddedBroker, EmbeddedPostgres, ensure_topics
from klimapuls.stack.runner import Stack
from klimapuls.storage import mobility, prepare_database
from klimapuls.storage.db import in_transaction
from tests.conftest import grant_test_producer
from tests.helpers import co2_event, scalar, wait_for
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


def _restated(n: int) -> tuple[list[tuple[str, dict[str, Any] | bytes]], int]:
    """`_stream(n)` with every third count restated and every fifth replayed.

    Each restatement (revision 1, a new id, one trip more) follows its count
    a little later in the stream; a replay is the count sent again as it
    was. Returns the events and the trips of the current counts.
    """
    events: list[tuple[str, dict[str, Any] | bytes]] = []
    later: dict[int, list[tuple[str, dict[str, Any] | bytes]]] = {}
    trips = 0
    for i, (kind, event) in enumerate(_stream(n)):
        events += later.pop(i, [])
        events.append((kind, event))
        if kind != "mobility_count" or not isinstance(event, dict):
            continue
        count = int(event["count"])
        if i % 3 == 0:
            restatement = count_event(
                event["site_id"],
                "bike",
                event["interval_start"],
                count + 1,
                revision=1,
                event_id=f"{event['event_id']}:r1",
            )
            later.setdefault(i + 40, []).append((kind, restatement))
            count += 1
        if i % 5 == 0:
            later.setdefault(i + 90, []).append((kind, dict(event)))
        trips += count
    return events + [e for i in sorted(later) for e in later[i]], trips


def test_restatements_through_two_workers_and_a_rebalance_roll_up_exactly(
    own_stack: tuple[EmbeddedBroker, EmbeddedPostgres, Settings],
) -> None:
    _broker, _database, settings = own_stack
    # Two sets of one service side by side, as replicas: a group shares
    # the partitions out (each `up` alone runs its workers static).
    settings = settings.model_copy(
        update={"mobility_workers": 2, "kafka_assignment": "group"}
    )
    url = settings.require_database_url()
    first = _run(settings, "co2", "mobility", "deadletter")
    second = _run(settings, "mobility")
    third: Stack | None = None
    try:
        events, trips = _restated(1_500)
        # Counted by distinct event: a replay is sent twice, stored once.
        by_id = {e["event_id"]: (k, e) for k, e in events if isinstance(e, dict)}
        distinct = [
            *by_id.values(),
            *((k, e) for k, e in events if isinstance(e, bytes)),
        ]
        sender = threading.Thread(target=_send, args=(settings, events, 400.0))
        sender.start()
        time.sleep(2)
        second.stop()  # two workers leave mid-stream, two others join
        time.sleep(1)
        third = _run(settings, "mobility")
        sender.join()
        count = wait_for(
            lambda: _count(url, distinct), lambda c: c.lost == 0, timeout_s=180
        )
        assert (count.lost, count.doubled) == (0, 0), count
        assert rollup_sums(url) == (trips, trips, trips)
        _alive(first)
    finally:
        for stack in (first, second, third):
            if stack is not None:
                stack.stop()
    # After the stop: everything rolled up once, as a rebuild would.
    engine = create_engine(url)
    try:
        before = _rollup_rows(engine)
        assert in_transaction(engine, mobility.rebuild_rollups).watermark_from == (
            scalar(engine, "SELECT max(seq) FROM mobility_count")
        )
        assert _rollup_rows(engine) == before
    finally:
        engine.dispose()


def _rollup_rows(engine: Engine) -> dict[str, list[Any]]:
    tables = ("mobility_hourly", "mobility_daily", "mobility_yearly")
    with engine.connect() as conn:
        return {
            t: [
                tuple(r)
                for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4"))
            ]
            for t in tables
        }
