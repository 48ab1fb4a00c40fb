"""Batch handling of fleet status events (no Kafka here).

One batch is one database transaction: valid snapshots are judged and
stored idempotently, and the fleet shares (for the boards) are rewritten
from all stored snapshots with the core's rules. Rejected events come back
as dead letters, and every batch with valid events, duplicates included,
announces a `SeriesChange` for the targets service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.fleet import FLEET_INDICATORS, fleet_shares
from klimapuls.core.messages import SeriesChange
from klimapuls.core.model import REGION_CODE
from klimapuls.storage import fleet
from klimapuls.storage.db import in_transaction
from klimapuls.storage.grants import grant_cache

__all__ = ["FLEET_STATUS", "FleetHandler", "write_shares"]

#: The event family this service consumes.
FLEET_STATUS = "fleet_status"


def write_shares(conn: Connection, now: datetime) -> None:
    """Rewrite the fleet shares of every scope from the stored snapshots."""
    fleet.lock_fleet_shares(conn)
    shares = fleet_shares(fleet.fleet_snapshots(conn))
    fleet.write_fleet_shares(
        conn, [row for rows in shares.values() for row in rows], now
    )


class FleetHandler:
    """Stores fleet snapshots and keeps the fleet shares current."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str = "fleet"
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        self.grants = grant_cache(engine)

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Validate, store and derive, all in one transaction."""
        now = self.clock()
        result, valid = decode_batch(
            batch,
            (FLEET_STATUS,),
            self.name,
            now,
            BatchResult,
            grants=self.grants.get(),
        )
        decoded = valid[FLEET_STATUS]
        if not decoded:
            return result

        def work(conn: Connection) -> None:
            judgements = fleet.store_fleet_status(conn, [d.event for d in decoded])
            result.judged(decoded, judgements, self.name, now)
            write_shares(conn, now)

        in_transaction(self.engine, work)
        scopes = {d.event["operator"] for d in decoded} | {REGION_CODE}
        result.series_changes.append(
            SeriesChange.of(self.name, FLEET_INDICATORS, scopes, now)
        )
        return result
