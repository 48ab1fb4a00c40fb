"""The dead-letter service's worker: `dead-letter` topic in, table rows out.

A burst of bad input is a burst of dead letters, and each one is only
stored, so this service reads them with the plain batch worker
(`klimapuls.bulk`): a batch as soon as the broker has one, where faust's
stream would wait out its batch window and pay its per-event cost. Its
handler is loaded while the worker joins its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from klimapuls.bulk import BulkWorker

if TYPE_CHECKING:
    from klimapuls.core.batch import BatchResult, Incoming
    from klimapuls.deadletter.handlers import DeadLetterHandler
    from klimapuls.settings import Settings

__all__ = ["DEAD_LETTER", "SERVICE", "create_worker"]

SERVICE = "deadletter"
#: The family of the messages read (its topic is `dead-letter`).
DEAD_LETTER = "dead_letter"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Letters:
    """The handler as the batch worker calls it: messages with their origins."""

    handler: DeadLetterHandler

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        return self.handler.handle(
            [message.value for message in batch], [message.origin for message in batch]
        )


def _handler(settings: Settings) -> _Letters:
    from klimapuls.deadletter.handlers import DeadLetterHandler
    from klimapuls.storage.db import create_db_engine

    engine = create_db_engine(settings.require_database_url())
    return _Letters(DeadLetterHandler(engine, _now, SERVICE))


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    settings.require_database_url()  # a missing URL is named before any join
    return BulkWorker(settings, SERVICE, (DEAD_LETTER,), partial(_handler, settings))
