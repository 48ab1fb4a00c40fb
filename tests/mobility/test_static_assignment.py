"""A set of batch workers shares its partitions out by place, without a group join.

With `KLIMAPULS_KAFKA_ASSIGNMENT=static` (what `klimapuls up` runs), worker
i of n reads every n-th partition from the i-th, from the offsets its
service committed in its group, and commits there as a group member would.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka import KafkaProducer
from sqlalchemy import Engine, text

from klimapuls.bulk import BulkWorker, share_of
from klimapuls.core.batch import Incoming
from klimapuls.core.errors import ConfigurationError
from klimapuls.mobility import MOBILITY_COUNT
from klimapuls.mobility.handlers import MobilityBatchResult, MobilityHandler
from klimapuls.settings import Settings
from klimapuls.stack.runner import Stack
from tests.helpers import wait_for
from tests.mobility.factories import count_event


class _Reading(MobilityHandler):
    """Records where each record it was handed came from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origins: list[str] = []

    def handle(self, batch: Sequence[Incoming]) -> MobilityBatchResult:
        self.origins += [incoming.origin for incoming in batch]
        return super().handle(batch)


def _stored(engine: Engine, ids: list[str]) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event_id FROM mobility_count WHERE event_id = ANY(:ids)"),
            {"ids": ids},
        )
        return [row[0] for row in rows]


def _run(
    settings: Settings, engine: Engine, ids: list[str], members: Sequence[int]
) -> list[_Reading]:
    """Run workers `members` of a static set of two until `ids` are stored."""
    static = settings.model_copy(update={"kafka_assignment": "static"})
    handlers, loops, threads, workers = [], [], [], []
    for index in members:
        handler = _Reading(engine, lambda: datetime.now(UTC), "mobility", 0.2)
        worker = BulkWorker(static, "mobility", (MOBILITY_COUNT,), lambda h=handler: h)
        worker.member = (index, 2)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=lambda w=worker, lp=loop: lp.run_until_complete(w.run())
        )
        thread.start()
        handlers.append(handler)
        workers.append(worker)
        loops.append(loop)
        threads.append(thread)
    try:
        wait_for(
            lambda: len(_stored(engine, ids)),
            lambda stored: stored == len(ids),
            timeout_s=60,
        )
    finally:
        for worker, loop in zip(workers, loops, strict=True):
            loop.call_soon_threadsafe(worker.stopping.set)
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return handlers


def _send_to(settings: Settings, partition: int, first: int, n: int) -> list[str]:
    """`n` counts into one partition of the topic; their ids."""
    sender = KafkaProducer(**settings.kafka.kafka_python_options())
    ids = []
    try:
        for i in range(first, first + n):
            event = count_event(f"site-{i}", "bike", "2024-03-04T08:00:00+00:00", 1)
            sender.send(
                settings.topics.mobility_count,
                json.dumps(event).encode(),
                partition=partition,
            )
            ids.append(event["event_id"])
        sender.flush()
    finally:
        sender.close()
    return ids


def _partitions(handler: _Reading) -> set[int]:
    return {int(origin.split(":")[-2]) for origin in handler.origins}


@pytest.mark.timeout(180)
def test_a_static_set_reads_each_partition_once_and_goes_on_where_it_was(
    settings: Settings, engine: Engine
) -> None:
    # Given counts in both partitions of the topic,
    first = _send_to(settings, 0, 0, 15) + _send_to(settings, 1, 15, 15)
    # a set of two static workers stores every one, once,
    one, two = _run(settings, engine, first, [0, 1])
    assert sorted(_stored(engine, first)) == sorted(first)  # event_id is unique
    # each worker from its own partition, each record handed over once.
    assert (_partitions(one), _partitions(two)) == ({0}, {1})
    read = one.origins + two.origins
    assert len(read) == len(set(read)) == 30
    # Worker 2 of 2, restarted alone with more counts in both partitions,
    # reads its partition's new ones only (a group would hand it both):
    # the offsets the set committed hold, and its share is its place's.
    later_0 = _send_to(settings, 0, 30, 5)
    later_1 = _send_to(settings, 1, 40, 10)
    (alone,) = _run(settings, engine, later_1, [1])
    assert _partitions(alone) == {1} and len(alone.origins) == 10
    assert _stored(engine, later_0) == []
    # and worker 1 of 2 then reads the other five.
    (other,) = _run(settings, engine, later_0, [0])
    assert _partitions(other) == {0} and len(other.origins) == 5


def test_a_set_shares_every_partition_out_once() -> None:
    partitions = {"counts": range(6)}
    shares = [share_of(partitions, i, 4) for i in range(4)]
    assert [[tp.partition for tp in share] for share in shares] == [
        [0, 4],
        [1, 5],
        [2],
        [3],
    ]
    # More workers than partitions: the rest read nothing.
    assert share_of({"counts": [0, 1]}, 2, 3) == []
    # Over two topics, in order.
    both = share_of({"b": [0, 1], "a": [0]}, 1, 2)
    assert [(tp.topic, tp.partition) for tp in both] == [("b", 0)]


def test_the_stack_runs_its_batch_workers_static_unless_told(
    settings: Settings,
) -> None:
    assert Stack(settings).service_env()["KLIMAPULS_KAFKA_ASSIGNMENT"] == "static"
    grouped = settings.model_copy(update={"kafka_assignment": "group"})
    assert Stack(grouped).service_env()["KLIMAPULS_KAFKA_ASSIGNMENT"] == "group"


def test_a_static_worker_names_a_missing_topic_and_how_to_create_it(
    settings: Settings,
) -> None:
    absent = settings.model_copy(
        update={"kafka_assignment": "static", "topic_prefix": "never-created-"}
    )
    worker = BulkWorker(absent, "mobility", (MOBILITY_COUNT,), lambda: None)
    with pytest.raises(ConfigurationError) as raised:
        asyncio.run(worker.run())
    message = str(raised.value)
    assert "never-created-mobility-count" in message
    assert "klimapuls topics create" in message
