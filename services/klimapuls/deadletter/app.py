"""The dead-letter service's faust app: `dead-letter` topic in, table rows out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT, StreamT

from klimapuls.core.batch import BatchResult
from klimapuls.deadletter.handlers import DeadLetterHandler
from klimapuls.settings import Settings
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import consume_batches, make_app, origin_of, raw_topic

__all__ = ["SERVICE", "create_app"]

SERVICE = "deadletter"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    app = make_app(settings, SERVICE)
    handler = DeadLetterHandler(
        create_db_engine(settings.require_database_url()), _now, SERVICE
    )

    def handle(events: Sequence[EventT[Any]]) -> BatchResult:
        return handler.handle(
            [bytes(e.value) for e in events], [origin_of(e) for e in events]
        )

    @app.agent(raw_topic(app, settings.topics.dead_letter), name=f"{SERVICE}.store")
    async def store(stream: StreamT[Any]) -> None:
        await consume_batches(stream, settings, handle)

    return app
