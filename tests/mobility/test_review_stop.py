"""A stop that comes while the timer derives: the scopes it took are still announced.

The bulk worker's stop cancels its timers, then derives once more
(`flush(force=True)`) and publishes that. A timer's derive runs in a
thread: cancelling its task does not stop it, and the window it took is
then derived, and so no longer pending for the stop's derive.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, Engine

from klimapuls.bulk import BulkWorker
from klimapuls.core.messages import SeriesChange
from klimapuls.mobility import MOBILITY_COUNT
from klimapuls.mobility.handlers import MobilityBatchResult, MobilityHandler
from klimapuls.producer import EventProducer
from klimapuls.settings import Settings
from tests.helpers import scalar, topic_values, wait_for
from tests.mobility.factories import count_event


class _SlowDerive(MobilityHandler):
    """A worker whose derive of new counts takes a while (a big database)."""

    deriving = threading.Event()

    def derive(
        self, conn: Connection, now: datetime, result: MobilityBatchResult
    ) -> None:
        super().derive(conn, now, result)
        if result.rollup is not None and result.rollup.hours:
            self.deriving.set()
            time.sleep(2)


def _notices(settings: Settings) -> list[SeriesChange]:
    values = topic_values(settings, settings.topics.series_change, quiet_s=3)
    return [SeriesChange.from_json(value) for value in values]


@pytest.mark.timeout(120)
def test_a_stop_while_the_timer_derives_still_announces_its_scopes(
    settings: Settings, engine: Engine, producer: EventProducer
) -> None:
    handler = _SlowDerive(engine, lambda: datetime.now(UTC), "mobility", 0.5)
    worker = BulkWorker(settings, "mobility", (MOBILITY_COUNT,), lambda: handler)
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=lambda: loop.run_until_complete(worker.run()))
    running.start()
    # Given a count stored by the worker,
    producer.send(
        MOBILITY_COUNT, count_event("s1", "bike", "2024-03-04T08:00:00+00:00", 7)
    )
    producer.flush()
    wait_for(
        lambda: scalar(engine, "SELECT count(*) FROM mobility_count"),
        lambda n: n == 1,
        timeout_s=60,
    )
    # when the worker stops while its timer rolls it up,
    assert handler.deriving.wait(30)
    loop.call_soon_threadsafe(worker.stopping.set)
    running.join(30)
    assert not running.is_alive()
    # then it is rolled up, and a notice names its municipality,
    assert scalar(engine, "SELECT trips FROM mobility_yearly") == 7
    notices = _notices(settings)
    assert any("147" in n.scopes for n in notices), notices
    # and the program it ran in collects garbage again, as before it started
    # (the worker collects between its batches while it runs).
    assert gc.isenabled()
