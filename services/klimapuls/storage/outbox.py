"""The outbox of the `target-status` topic: status changes not yet sent.

The targets service logs changes in `target_status_change` in the same
transaction as the progress (`klimapuls.storage.progress`); its publisher
reads the unsent ones here, in order, under one lock, sends them and marks
them sent in that same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select, text, update

from klimapuls.core.messages import TargetStatusChange
from klimapuls.storage.models import TargetStatusChangeRow

__all__ = ["lock_outbox", "mark_published", "unpublished_status_changes"]


def lock_outbox(conn: Connection) -> None:
    """Serialise publishers of the status-change outbox until the commit."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.outbox'))"))


def unpublished_status_changes(conn: Connection) -> list[TargetStatusChange]:
    """Status changes not yet on the `target-status` topic, oldest first."""
    rows = conn.execute(
        select(TargetStatusChangeRow)
        .where(TargetStatusChangeRow.published_at.is_(None))
        .order_by(TargetStatusChangeRow.id)
    )
    fields = TargetStatusChange.__dataclass_fields__
    return [
        TargetStatusChange(**{k: v for k, v in r.items() if k in fields})
        for r in rows.mappings()
    ]


def mark_published(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Mark outbox rows as sent."""
    if ids:
        conn.execute(
            update(TargetStatusChangeRow)
            .where(TargetStatusChangeRow.id.in_(list(ids)))
            .values(published_at=now)
        )
