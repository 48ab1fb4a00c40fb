"""Batch handling of fleet status events (no Kafka here).

Valid snapshots are judged and stored idempotently, one transaction a
batch; rejected events come back as dead letters. Deriving (the fleet
shares of every scope for the boards, rewritten from all stored snapshots
with the core's rules, then a `SeriesChange` naming the operators whose
snapshots arrived, duplicates included) runs once per window, as for every
series owner (`klimapuls.deriving`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from klimapuls.core.batch import BatchResult
from klimapuls.core.fleet import FLEET_INDICATORS, fleet_shares
from klimapuls.core.identity import Judgement
from klimapuls.deriving import SeriesOwner
from klimapuls.fleet import FLEET_STATUS
from klimapuls.storage import fleet

__all__ = ["FLEET_STATUS", "FleetHandler", "write_shares"]


def write_shares(conn: Connection, now: datetime) -> None:
    """Rewrite the fleet shares of every scope from the stored snapshots."""
    fleet.lock_fleet_shares(conn)
    shares = fleet_shares(fleet.fleet_snapshots(conn))
    fleet.write_fleet_shares(
        conn, [row for rows in shares.values() for row in rows], now
    )


class FleetHandler(SeriesOwner[BatchResult]):
    """Stores fleet snapshots and keeps the fleet shares current."""

    service = "fleet"
    kind = FLEET_STATUS
    indicators = FLEET_INDICATORS
    scope_field = "operator"
    result_type = BatchResult

    def store(
        self,
        conn: Connection,
        events: list[dict[str, Any]],
        now: datetime,
        result: BatchResult,
    ) -> list[Judgement]:
        """Store snapshots idempotently."""
        return fleet.store_fleet_status(conn, events)

    def derive(self, conn: Connection, now: datetime, result: BatchResult) -> None:
        """Rewrite the fleet shares."""
        write_shares(conn, now)
