"""Dead letters at rest (owner: the deadletter service)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.deadletter import DeadLetter
from klimapuls.storage.models import DeadLetterRow

__all__ = ["store_dead_letters"]


def store_dead_letters(conn: Connection, letters: Sequence[DeadLetter]) -> int:
    """Insert dead letters, once per identity; returns rows added."""
    if not letters:
        return 0
    rows = [
        {
            "dead_letter_id": d.dead_letter_id,
            "origin": d.origin,
            "kind": d.kind,
            "event_id": d.event_id,
            "field": d.field,
            "reason": d.reason,
            "issues": d.issues,
            "payload": d.payload,
            "payload_encoding": d.payload_encoding,
            "payload_size": d.payload_size,
            "payload_sha256": d.payload_sha256,
            "payload_truncated": d.payload_truncated,
            "rejected_by": d.rejected_by,
            "rejected_at": d.rejected_at,
        }
        for d in letters
    ]
    result = conn.execute(
        insert(DeadLetterRow)
        .on_conflict_do_nothing()
        .returning(DeadLetterRow.dead_letter_id),
        rows,
    )
    return len(result.all())
