"""A worker reading a backlog leaves its derive for later, and derives once caught up.

The batch worker tells its handler, batch by batch, whether it is behind
(a full batch, or a short one below the broker's high watermark: more is
waiting) or has caught up (a short batch at the watermark or an empty
poll); the handler's derive waits for `backlog_seconds` only while behind.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Connection, Engine

from klimapuls import bulk
from klimapuls.bulk import BulkWorker, more_waiting
from klimapuls.core.batch import Incoming
from klimapuls.mobility import MOBILITY_COUNT
from klimapuls.mobility.handlers import MobilityBatchResult, MobilityHandler
from klimapuls.producer import EventProducer
from klimapuls.settings import Settings
from tests.helpers import scalar, wait_for
from tests.mobility.factories import count_event


class _Told(MobilityHandler):
    """Records what the worker tells it and what each derive rolled up;
    its batches take a while, so that timer ticks come between them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.told: list[bool] = []
        self.rolled_up: list[int] = []

    def reading(self, behind: bool) -> None:
        self.told.append(behind)
        super().reading(behind)

    def handle(self, batch: Sequence[Incoming]) -> MobilityBatchResult:
        result = super().handle(batch)
        time.sleep(0.5)  # two and a half windows
        return result

    def derive(
        self, conn: Connection, now: datetime, result: MobilityBatchResult
    ) -> None:
        super().derive(conn, now, result)
        if result.rollup is not None and result.rollup.hours:
            self.rolled_up.append(result.rollup.hours)


def _backlog(producer: EventProducer, *, one_by_one: bool = False) -> None:
    """Five counts of one site, in one partition."""
    for hour in range(5):
        producer.send(
            MOBILITY_COUNT,
            count_event("s1", "bike", f"2024-03-04T{8 + hour:02d}:00:00+00:00", 1),
        )
        if one_by_one:  # each its own record batch on the broker
            producer.flush()
    producer.flush()


def _rolled_up(settings: Settings, engine: Engine, batch_size: int) -> _Told:
    """Run a worker until the backlog is in the rollups; its handler."""
    handler = _Told(
        engine, lambda: datetime.now(UTC), "mobility", 0.2, backlog_seconds=3600
    )
    handler.flush()  # its first derive (a new handler's) is behind it
    reading = settings.model_copy(update={"batch_size": batch_size})
    worker = BulkWorker(reading, "mobility", (MOBILITY_COUNT,), lambda: handler)
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=lambda: loop.run_until_complete(worker.run()))
    running.start()
    try:
        wait_for(
            lambda: scalar(engine, "SELECT sum(trips) FROM mobility_yearly"),
            lambda trips: trips == 5,
            timeout_s=60,
        )
    finally:
        loop.call_soon_threadsafe(worker.stopping.set)
        running.join(30)
    assert not running.is_alive()
    return handler


@pytest.mark.timeout(120)
def test_a_backlog_is_rolled_up_once_the_worker_caught_up(
    settings: Settings, engine: Engine, producer: EventProducer
) -> None:
    # Given a backlog of five counts, read two at a time,
    _backlog(producer)
    handler = _rolled_up(settings, engine, batch_size=2)
    # the worker is behind while its batches come full, then caught up,
    # and rolls the whole backlog up without waiting the backlog's hour.
    assert True in handler.told and handler.told[-1] is False
    # One derive, once caught up, took the whole backlog (its five
    # hours): none came between the full batches, though ticks did.
    assert handler.rolled_up == [5]


@pytest.mark.timeout(120)
def test_short_batches_in_a_backlog_still_leave_the_derive_for_later(
    settings: Settings,
    engine: Engine,
    producer: EventProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a backlog of five counts that each fetch brings one at a time
    # (a fetch returns at least one record batch, whatever its byte limit),
    _backlog(producer, one_by_one=True)
    one_at_a_time = partial(AIOKafkaConsumer, fetch_max_bytes=1)
    monkeypatch.setattr(bulk, "AIOKafkaConsumer", one_at_a_time)
    handler = _rolled_up(settings, engine, batch_size=100)
    # every batch is short, but the broker's watermark says more is
    # waiting behind all but the last: one derive, after the backlog.
    assert handler.told[:4] == [True] * 4 and handler.told[-1] is False
    assert handler.rolled_up == [5]


def test_more_is_waiting_after_a_full_batch_or_below_the_watermark() -> None:
    # (high watermark, position after the batch) of each partition read
    assert more_waiting(3, 3, [(13, 13)])  # full
    assert not more_waiting(3, 100, [(13, 13)])  # at the end
    assert more_waiting(3, 100, [(13, 13), (20, 13)])  # 7 behind in one
    assert not more_waiting(3, 100, [(None, 13)])  # not known yet
