"""Batch handling of the dead-letter topic (no Kafka here).

Every message on the topic becomes a row of `dead_letter`, once per
`dead_letter_id`. A message that is not a readable dead letter (garbage,
JSON nested too deep, another producer's mistake) is kept too, wrapped as a
dead letter of its own with the reason, so nothing on the topic is lost and
no bytes can stop the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Engine

from klimapuls.core.batch import BatchResult
from klimapuls.core.deadletter import DeadLetter, clip
from klimapuls.storage.db import in_transaction
from klimapuls.storage.deadletters import store_dead_letters

__all__ = ["DeadLetterHandler"]

log = logging.getLogger(__name__)


class DeadLetterHandler:
    """Stores dead letters from the topic, readable or not."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str = "deadletter"
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name

    def letter(self, raw: bytes, origin: str = "dead-letter") -> DeadLetter:
        """The dead letter a topic message carries, or one that wraps it."""
        try:
            return DeadLetter.from_json(raw)
        except ValueError as exc:
            reason = clip(f"unreadable dead letter: {exc}", 300)
            log.error("%s at %s", reason, origin)
            return DeadLetter.rejected(
                kind=None,
                origin=origin,
                payload=raw,
                field="$",
                reason=reason,
                rejected_by=self.name,
                rejected_at=self.clock(),
            )

    def handle(
        self, values: Sequence[bytes], origins: Sequence[str] | None = None
    ) -> BatchResult:
        """Store one batch of topic messages in one transaction."""
        where = list(origins) if origins is not None else ["dead-letter"] * len(values)
        letters = [self.letter(raw, at) for raw, at in zip(values, where, strict=True)]
        stored = in_transaction(
            self.engine, lambda conn: store_dead_letters(conn, letters)
        )
        return BatchResult(stored=stored, duplicates=len(letters) - stored)
