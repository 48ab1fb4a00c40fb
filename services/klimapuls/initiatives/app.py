"""The initiatives service's faust app: `initiative-status` topic in, rows out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT, StreamT

from klimapuls.core.settings import Settings
from klimapuls.initiatives.handlers import BatchResult, Incoming, InitiativeHandler
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import consume_batches, deliver, make_app, origin_of, raw_topic

__all__ = ["SERVICE", "create_app"]

SERVICE = "initiatives"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    app = make_app(settings, SERVICE)
    engine = create_db_engine(settings.require_database_url())
    handler = InitiativeHandler(engine, _now, name=SERVICE)
    topics = settings.topics
    dead_letter = raw_topic(app, topics.dead_letter)

    def handle(events: Sequence[EventT[Any]]) -> BatchResult:
        return handler.handle([Incoming(bytes(e.value), origin_of(e)) for e in events])

    async def after(result: BatchResult) -> None:
        for letter in result.dead_letters:
            await deliver(dead_letter, letter.dead_letter_id.encode(), letter.to_json())

    @app.agent(
        raw_topic(app, topics.initiative_status), name=f"{SERVICE}.initiative_status"
    )
    async def reports(stream: StreamT[Any]) -> None:
        await consume_batches(stream, settings, handle, after)

    return app
