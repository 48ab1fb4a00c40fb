"""Batch handling of fleet status events (no Kafka here).

One batch is one database transaction: valid snapshots are stored
idempotently, fleet shares and the progress of the fleet targets are
recomputed from the stored snapshots, and status changes are logged in the
outbox. Rejected events come back as dead letters for the caller to publish
before it acknowledges the batch.

Target events are read too, so that a fleet target arriving after the fleet
figures gets its progress at once. The CO2 service owns target events (and
their dead letters); storing fleet targets here as well is idempotent, so
whichever service comes first stores each version once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from klimapuls.core.batch import BatchResult, Incoming, reject
from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.fleet import (
    FLEET_INDICATORS,
    fleet_shares,
    share_series,
)
from klimapuls.core.model import INDICATOR_UNITS, Progress
from klimapuls.core.targets import evaluate
from klimapuls.core.validation import decode_event
from klimapuls.storage import fleet_repository, repository
from klimapuls.storage.progress import ProgressKeeper

__all__ = ["BatchResult", "FleetHandler", "Incoming", "recompute_fleet"]

log = logging.getLogger(__name__)

FLEET_STATUS = "fleet_status"
TARGET = "target"


def recompute_fleet(conn: Connection, now: datetime) -> list[repository.StatusChange]:
    """Rewrite fleet shares and fleet-target progress from the stored snapshots."""
    # Two workers may finish batches at once; let one recompute at a time so
    # the status-change log sees each change once.
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.fleet.progress'))")
    )
    shares = fleet_shares(fleet_repository.fleet_snapshots(conn))
    fleet_repository.write_fleet_shares(
        conn, [row for rows in shares.values() for row in rows], now
    )
    progress: list[Progress] = []
    for target in repository.current_targets(conn):
        # Other indicators are evaluated by their own services.
        if target.indicator not in FLEET_INDICATORS:
            continue
        series = share_series(shares, target.scope, target.indicator)
        # Stored too, so `klimapuls progress --as-of` can recompute this target.
        repository.write_indicator_series(
            conn, target.indicator, target.scope, series.values()
        )
        progress.append(evaluate(target, series, now.date()))
    return repository.write_progress(conn, progress, now)


class FleetHandler(ProgressKeeper):
    """Stores fleet snapshots and keeps fleet shares and progress current."""

    service = "fleet"

    def recompute(
        self, conn: Connection, now: datetime
    ) -> list[repository.StatusChange]:
        """Rewrite derived rows and progress (`recompute_fleet`)."""
        return recompute_fleet(conn, now)

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Validate, store and derive, all in one transaction."""
        now = self.clock()
        result = BatchResult()
        snapshots: list[tuple[Incoming, dict[str, Any]]] = []
        targets: list[dict[str, Any]] = []
        for message in batch:
            try:
                event = decode_event(message.kind, message.value)
            except EventValidationError as exc:
                if message.kind == FLEET_STATUS:
                    result.dead_letters.append(reject(message, exc, self.name, now))
                else:
                    # The CO2 service dead-letters bad targets; once is enough.
                    log.info("skipped invalid target at %s", message.origin)
                continue
            if message.kind == FLEET_STATUS:
                snapshots.append((message, event))
            elif event["indicator"] in FLEET_INDICATORS:
                # Only fleet targets: a CO2 target stored here first would
                # look like a duplicate to the CO2 service, which then would
                # not recompute its progress.
                targets.append(event)

        def work(conn: Connection) -> None:
            events = [e for _, e in snapshots]
            added, reused = fleet_repository.store_fleet_status(conn, events)
            refused = 0
            for message, event in snapshots:
                if repository.is_rejected(event, reused):
                    refused += 1
                    issue = FieldIssue(
                        "event_id",
                        "already stored with different content (a restatement "
                        "needs a new event_id and a later reported_at)",
                    )
                    error = EventValidationError([issue])
                    result.dead_letters.append(reject(message, error, self.name, now))
            # Clashing target versions are the CO2 service's to report.
            repository.store_targets(conn, targets, INDICATOR_UNITS)
            result.stored = added
            result.duplicates = len(events) - added - refused
            if added or targets or not self._recomputed_once:
                result.status_changes = self.recompute(conn, now)

        repository.in_transaction(self.engine, work)
        self._recomputed_once = True
        return result
