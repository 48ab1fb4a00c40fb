"""Shared harness: run a batch handler at several batch sizes on a real PostgreSQL.

Each run gets a fresh, migrated database on one embedded server; the table
shows events per second and the ratio to the one-event-per-transaction
baseline measured in the same run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from klimapuls.core.batch import Incoming
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage import prepare_database
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import BatchHandler

HandlerFactory = Callable[[Engine, Callable[[], datetime]], BatchHandler]


def _fresh_database(server: EmbeddedPostgres, name: str) -> str:
    url = server.fresh_database(name)  # made as `klimapuls up` makes its own
    prepare_database(url)
    return url


def _rate(
    url: str, make: HandlerFactory, messages: Sequence[Incoming], size: int
) -> float:
    engine = create_db_engine(url)
    handler = make(engine, lambda: datetime(2026, 11, 1, tzinfo=UTC))
    started = time.perf_counter()
    for i in range(0, len(messages), size):
        handler.handle(messages[i : i + size])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return len(messages) / elapsed


def batch_size_table(
    make: HandlerFactory,
    messages: Sequence[Incoming],
    baseline_events: int,
    sizes: Sequence[int] = (50, 500),
) -> None:
    """Print events/s per batch size against the batch-1 baseline."""
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        server.start()
        try:
            # The baseline on a slice: one event per transaction is slow.
            n = min(baseline_events, len(messages))
            baseline = _rate(_fresh_database(server, "b1"), make, messages[:n], 1)
            print(
                f"{'batch size':>10} {'events':>7} {'events/s':>10} {'vs batch 1':>10}"
            )
            print(f"{1:>10} {n:>7} {baseline:>10.0f} {1.0:>9.1f}x")
            for size in sizes:
                url = _fresh_database(server, f"b{size}")
                rate = _rate(url, make, messages, size)
                ratio = rate / baseline
                print(f"{size:>10} {len(messages):>7} {rate:>10.0f} {ratio:>9.1f}x")
        finally:
            server.stop()
