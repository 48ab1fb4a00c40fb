"""The dead-letter service's faust app: `dead-letter` topic in, table rows out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import faust
from faust.types import EventT, StreamT

from klimapuls.core.deadletter import DeadLetter
from klimapuls.core.settings import Settings
from klimapuls.storage import repository
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import consume_batches, make_app, raw_topic

__all__ = ["SERVICE", "create_app"]

SERVICE = "deadletter"
log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    app = make_app(settings, SERVICE)
    engine = create_db_engine(settings.require_database_url())

    def handle(events: Sequence[EventT[Any]]) -> int:
        letters = []
        for event in events:
            try:
                letters.append(DeadLetter.from_json(bytes(event.value)))
            except (ValueError, TypeError, KeyError) as exc:
                # A dead letter we cannot read is still kept: wrap it as is.
                log.error("unreadable dead letter at %s: %s", event.message.offset, exc)
                letters.append(_unreadable(bytes(event.value), str(exc)))
        return repository.in_transaction(
            engine, lambda conn: repository.store_dead_letters(conn, letters)
        )

    @app.agent(raw_topic(app, settings.topics.dead_letter), name=f"{SERVICE}.store")
    async def store(stream: StreamT[Any]) -> None:
        await consume_batches(stream, settings, handle)

    return app


def _unreadable(raw: bytes, reason: str) -> DeadLetter:
    from datetime import UTC, datetime

    from klimapuls.core.errors import EventValidationError, FieldIssue

    error = EventValidationError([FieldIssue("$", f"unreadable dead letter: {reason}")])
    return DeadLetter.from_error(
        error,
        kind=None,
        origin="dead-letter",
        payload=raw,
        rejected_by=SERVICE,
        rejected_at=datetime.now(UTC),
    )
