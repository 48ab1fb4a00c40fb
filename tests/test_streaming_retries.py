"""A database blip right after a commit does not crash a worker.

Defect 4 of the architecture issue (and of the reliability issue): the step
after the batch (dead letters, the status-change outbox) ran outside the
retry loop, so a database drop in that window crashed the service. Here the
outbox publisher runs against a real PostgreSQL that is stopped while it
runs and started again two seconds later.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from klimapuls.core.batch import BatchResult
from klimapuls.core.errors import RetryableError
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage import prepare_database
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import publish_with_retries
from klimapuls.targets.app import publish_status_changes


def test_publishing_after_the_commit_waits_for_the_database_to_return(
    tmp_path: Path,
) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", "blip")
    url = server.start()
    prepare_database(url)
    engine = create_db_engine(url)
    calls: list[float] = []

    async def publish(result: BatchResult) -> None:
        calls.append(time.monotonic())
        # Nothing unsent in the outbox: the topic is never used.
        await publish_status_changes(engine, topic=None)  # type: ignore[arg-type]

    def restart_later() -> None:
        time.sleep(2)
        server.start()

    try:
        server.stop()
        threading.Thread(target=restart_later, daemon=True).start()
        began = time.monotonic()
        asyncio.run(publish_with_retries(publish, BatchResult(), "publishing"))
        assert time.monotonic() - began >= 1.5
        assert len(calls) >= 2  # failed while the database was away, then sent
    finally:
        engine.dispose()
        server.stop()


def test_a_bug_while_publishing_still_stops_the_worker() -> None:
    async def broken(result: Any) -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        asyncio.run(publish_with_retries(broken, BatchResult(), "publishing"))


def test_retryable_errors_are_retried_until_they_pass() -> None:
    failures = [RetryableError("database unavailable")] * 2

    async def flaky(result: Any) -> None:
        if failures:
            raise failures.pop()

    asyncio.run(publish_with_retries(flaky, BatchResult(), "publishing"))
    assert failures == []
