"""Batch handling of CO2 account and target events (no Kafka here).

One batch is one database transaction: valid events are stored idempotently,
the series and target progress are recomputed from the stored accounts, and
status changes are logged in the outbox. Rejected events come back as dead
letters for the caller to publish before it acknowledges the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from klimapuls.core.batch import REUSED_EVENT_ID, BatchResult, Incoming, reject
from klimapuls.core.errors import EventValidationError
from klimapuls.core.model import INDICATOR_UNITS
from klimapuls.core.validation import decode_event
from klimapuls.storage import repository
from klimapuls.storage.progress import ProgressKeeper, recompute_emission_progress

__all__ = ["BatchResult", "Co2Handler", "Incoming", "recompute_progress"]

log = logging.getLogger(__name__)


def recompute_progress(
    conn: Connection, now: datetime
) -> list[repository.StatusChange]:
    """Rewrite emission series and target progress from the stored accounts.

    The shared implementation (`storage.progress`) is also what
    `klimapuls progress` runs, so both give the same numbers.
    """
    return recompute_emission_progress(conn, now)


class Co2Handler(ProgressKeeper):
    """Stores CO2 account and target events and keeps progress current."""

    service = "co2"

    def recompute(
        self, conn: Connection, now: datetime
    ) -> list[repository.StatusChange]:
        """Rewrite derived rows and progress (`recompute_progress`)."""
        return recompute_progress(conn, now)

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Validate, store and derive, all in one transaction."""
        now = self.clock()
        result = BatchResult()
        valid: dict[str, list[tuple[Incoming, dict[str, Any]]]] = {
            "co2_account": [],
            "target": [],
        }
        for message in batch:
            try:
                event = decode_event(message.kind, message.value)
            except EventValidationError as exc:
                result.dead_letters.append(reject(message, exc, self.name, now))
                continue
            valid[message.kind].append((message, event))

        def work(conn: Connection) -> None:
            accounts = [e for _, e in valid["co2_account"]]
            targets = [e for _, e in valid["target"]]
            added, reused = repository.store_co2_accounts(conn, accounts)
            t_added, clashes = repository.store_targets(conn, targets, INDICATOR_UNITS)
            refused = [
                (message, event)
                for kind, pairs in valid.items()
                for message, event in pairs
                if (kind == "co2_account" and repository.is_rejected(event, reused))
                or (kind == "target" and event["event_id"] in clashes)
            ]
            for message, _event in refused:
                error = EventValidationError([REUSED_EVENT_ID])
                result.dead_letters.append(reject(message, error, self.name, now))
            result.stored = added + t_added
            result.duplicates = (
                len(accounts) + len(targets) - result.stored - len(refused)
            )
            if result.stored or not self._recomputed_once:
                result.status_changes = self.recompute(conn, now)

        repository.in_transaction(self.engine, work)
        self._recomputed_once = True
        return result
