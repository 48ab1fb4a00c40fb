"""A batch worker stopped while it joins its group ends without waiting for the join.

Joining takes seconds on the dev broker and never ends while the broker is
gone; a worker that waited for it would outlive its stop (a worker whose
parent died lived on for an hour, retrying a broker that was gone).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from klimapuls.bulk import BulkWorker
from klimapuls.mobility import MOBILITY_COUNT
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.settings import Settings


@pytest.mark.timeout(120)
def test_a_stop_while_the_worker_joins_its_group_ends_it(
    settings: Settings, engine: Engine
) -> None:
    # Given a worker whose join takes 30 s (the dev broker answers a
    # JoinGroup after half the session timeout),
    slow = settings.model_copy(
        update={"kafka_session_timeout_s": 60, "kafka_heartbeat_s": 3}
    )
    handler = MobilityHandler(engine, lambda: datetime.now(UTC), "mobility", 1.0)
    worker = BulkWorker(slow, "mobility", (MOBILITY_COUNT,), lambda: handler)
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=lambda: loop.run_until_complete(worker.run()))
    running.start()
    time.sleep(2)  # its producer has started; it is joining
    # when it is stopped,
    loop.call_soon_threadsafe(worker.stopping.set)
    # it ends long before the join would have (its clients get 3 s to stop).
    running.join(15)
    assert not running.is_alive()
    loop.close()


@pytest.mark.timeout(120)
def test_a_stop_while_the_producer_waits_for_a_silent_broker_ends_it(
    settings: Settings, engine: Engine
) -> None:
    # Given a "broker" that accepts connections and never answers (the
    # producer's start waits for its request timeout, 40 s),
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    away = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(
                update={"bootstrap_servers": f"127.0.0.1:{port}"}
            )
        }
    )
    handler = MobilityHandler(engine, lambda: datetime.now(UTC), "mobility", 1.0)
    worker = BulkWorker(away, "mobility", (MOBILITY_COUNT,), lambda: handler)
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=lambda: loop.run_until_complete(worker.run()))
    running.start()
    try:
        time.sleep(2)  # its producer is starting
        # when it is stopped, it ends without waiting for the broker.
        loop.call_soon_threadsafe(worker.stopping.set)
        running.join(10)
        assert not running.is_alive()
    finally:
        silent.close()
        running.join(60)
        loop.close()
