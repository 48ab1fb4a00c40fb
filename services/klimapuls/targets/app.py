"""The targets service's faust app: `target` and `series-change` in.

After each batch commits, the outbox of status changes is published to
`target-status` (in order, under one lock; see `publish_status_changes`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import faust
from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult
from klimapuls.settings import Settings
from klimapuls.storage import outbox
from klimapuls.storage.db import create_db_engine, in_transaction
from klimapuls.streaming import Publisher, deliver, raw_topic, service_app
from klimapuls.targets.handlers import SERIES_CHANGE, TARGET, TargetsHandler

__all__ = ["SERVICE", "create_app", "publish_status_changes"]

SERVICE = "targets"
_SEND_TIMEOUT_S = 60


def _now() -> datetime:
    return datetime.now(UTC)


async def publish_status_changes(engine: Engine, topic: faust.TopicT) -> int:
    """Send status changes from the outbox, then mark them sent; how many.

    One transaction holds the outbox lock while it sends and marks, so
    concurrent publishers (agents, replicas) neither send a change twice nor
    out of order; if a send fails, nothing is marked and the next call
    retries. Only a crash between the broker's ack and the commit sends a
    change twice; consumers key on `id`.
    """
    loop = asyncio.get_running_loop()

    def work(conn: Connection) -> int:
        outbox.lock_outbox(conn)
        changes = outbox.unpublished_status_changes(conn)
        for change in changes:
            sending = deliver(topic, change.target_id.encode(), change.to_json())
            asyncio.run_coroutine_threadsafe(sending, loop).result(_SEND_TIMEOUT_S)
        outbox.mark_published(conn, [c.id for c in changes if c.id is not None], _now())
        return len(changes)

    return await asyncio.to_thread(in_transaction, engine, work)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    engine = create_db_engine(settings.require_database_url())

    def publisher(app: faust.App) -> Publisher:
        target_status = raw_topic(app, settings.topics.target_status)

        async def publish(result: BatchResult) -> None:
            await publish_status_changes(engine, target_status)

        return publish

    return service_app(
        settings,
        SERVICE,
        (TARGET, SERIES_CHANGE),
        TargetsHandler(engine, _now, SERVICE, settings.progress_seconds),
        publisher=publisher,
    )
