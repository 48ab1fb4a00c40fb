"""Idempotent inserts of events, judged by `klimapuls.core.identity`.

The rows already stored for a batch's ids are loaded into a `Ledger`, each
event is judged in batch order (new, duplicate, rejected), and only the new
ones are inserted. The same ledger rules run offline, so the database and
`klimapuls progress --offline` agree on every event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from itertools import compress
from typing import Any

from sqlalchemy import Connection, Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY, insert

from klimapuls.core.identity import (
    Admit,
    Identity,
    Judgement,
    Ledger,
    Verdict,
    resend_id,
)

__all__ = [
    "RivalsOf",
    "RowOf",
    "exact",
    "insert_new_events",
    "judge_events",
    "lookup_ids",
    "may_be_resent",
    "stored_identities",
]

#: How a validated event becomes a row (without `event_id`/`payload_sha256`).
RowOf = Callable[[dict[str, Any]], dict[str, Any]]
#: The stored reports of the slots of these events (`klimapuls.core.identity`).
RivalsOf = Callable[[Connection, Sequence[dict[str, Any]]], list[Identity]]


def lookup_ids(events: Sequence[dict[str, Any]]) -> list[str]:
    """The ids to look up for a batch: each event's, and its re-send's."""
    ids = [e["event_id"] for e in events]
    ids += [resend_id(e["event_id"], e["reported_at"]) for e in events]
    return list(dict.fromkeys(ids))


def may_be_resent(
    events: Sequence[dict[str, Any]], stored: Collection[str]
) -> list[bool]:
    """Per event, whether it may be a re-send the ledger judges by its slot.

    An id stored before, or an id given more than once in the batch: a late
    report re-sent in its own batch competes with its slot's stored reports
    too, so those must be loaded for it (`Ledger.of`'s `rivals`).
    """
    given = Counter(e["event_id"] for e in events)
    return [e["event_id"] in stored or given[e["event_id"]] > 1 for e in events]


def stored_identities(
    conn: Connection, kind: str, table: Any, event_ids: Sequence[str]
) -> list[Identity]:
    """The identities stored in `table` (keyed by `event_id`) for these ids."""
    if not event_ids:
        return []
    ids = bindparam("ids", list(dict.fromkeys(event_ids)), type_=ARRAY(Text))
    rows = conn.execute(
        select(table.event_id, table.payload_sha256).where(table.event_id == any_(ids))
    )
    return [Identity((kind, eid), eid, digest) for eid, digest in rows]


def judge_events(
    conn: Connection,
    kind: str,
    table: Any,
    events: Sequence[dict[str, Any]],
    rivals_of: RivalsOf | None = None,
    admit: Admit | None = None,
) -> list[Judgement]:
    """Judge events keyed by `event_id` against the stored ones, in order.

    `admit` is the kind's last rule on each new fact (`Ledger.judge`).

    Events whose id is already stored, or given twice in the batch, may be
    re-sends of a superseded fact (`may_be_resent`): for those, `rivals_of`
    loads the stored reports of their slots, so the ledger can tell (only
    then: a batch of new facts costs one query).
    """
    known = stored_identities(conn, kind, table, lookup_ids(events))
    stored = {identity.event_id for identity in known}
    again = list(compress(events, may_be_resent(events, stored)))
    rivals = rivals_of(conn, again) if rivals_of is not None and again else []
    ledger = Ledger.of(kind, known, rivals)
    return [ledger.judge(event, admit) for event in events]


def insert_new_events(
    conn: Connection,
    kind: str,
    table: Any,
    events: Sequence[dict[str, Any]],
    row_of: RowOf,
    rivals_of: RivalsOf | None = None,
    admit: Admit | None = None,
) -> list[Judgement]:
    """Judge events and insert the new ones; one judgement per event, in order.

    A new event another writer stored in the meantime (the insert found its
    key taken) is reported as a duplicate. A re-sent fact that wins back its
    slot is inserted under its `resend_id` with its new `reported_at`.
    """
    judgements = judge_events(conn, kind, table, events, rivals_of, admit)
    rows = [
        {
            **row_of(event),
            "event_id": j.identity.event_id,
            "payload_sha256": j.identity.digest,
        }
        for event, j in zip(events, judgements, strict=True)
        if j.verdict is Verdict.NEW
    ]
    if not rows:
        return judgements
    inserted = set(
        conn.execute(
            insert(table).on_conflict_do_nothing().returning(table.event_id), rows
        ).scalars()
    )
    return [
        Judgement(Verdict.DUPLICATE, j.identity)
        if j.verdict is Verdict.NEW and j.identity.event_id not in inserted
        else j
        for j in judgements
    ]


def exact(value: Any) -> Any:
    """A float as the `Decimal` of its shortest repr, for a `numeric` column.

    PostgreSQL casts a float parameter to `numeric` with 15 digits, so
    `0.30000000000000004` would come back as `0.3`; the repr's Decimal
    round-trips exactly, and the database and the files then hold the same
    numbers.
    """
    if isinstance(value, float):
        return Decimal(repr(value))
    return value
