"""The mobility service's faust app: `mobility-count` and `target` in, progress out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT, StreamT

from klimapuls.core.settings import Settings
from klimapuls.mobility.handlers import (
    MOBILITY_COUNT,
    TARGET,
    BatchResult,
    Incoming,
    MobilityHandler,
)
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import (
    consume_batches,
    deliver,
    make_app,
    origin_of,
    publish_status_changes,
    raw_topic,
)

__all__ = ["SERVICE", "create_app"]

SERVICE = "mobility"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    app = make_app(settings, SERVICE)
    engine = create_db_engine(settings.require_database_url())
    handler = MobilityHandler(engine, _now, name=SERVICE)
    topics = settings.topics
    dead_letter = raw_topic(app, topics.dead_letter)
    target_status = raw_topic(app, topics.target_status)

    async def after(result: BatchResult) -> None:
        for letter in result.dead_letters:
            await deliver(dead_letter, letter.dead_letter_id.encode(), letter.to_json())
        await publish_status_changes(engine, target_status)

    def agent_for(kind: str, topic_name: str) -> None:
        def handle(events: Sequence[EventT[Any]]) -> BatchResult:
            return handler.handle(
                [Incoming(kind, bytes(e.value), origin_of(e)) for e in events]
            )

        async def agent(stream: StreamT[Any]) -> None:
            await consume_batches(stream, settings, handle, after)

        app.agent(raw_topic(app, topic_name), name=f"{SERVICE}.{kind}")(agent)

    agent_for(MOBILITY_COUNT, topics.mobility_count)
    agent_for(TARGET, topics.target)
    return app
