"""Alert contacts and acknowledgements.

Writers: `klimapuls contacts add/remove/import` writes `alert_contact`;
`klimapuls alerts ack` writes `alert_acknowledgement`. The alerts service
only reads both (it moves an acknowledged alert on in its own table).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.alert_state import Ack, Contact
from klimapuls.storage.models_alerts import (
    AlertAcknowledgementRow,
    AlertContactRow,
    AlertRow,
)

__all__ = [
    "acknowledge",
    "add_contacts",
    "contacts",
    "pending_acks",
    "remove_contacts",
]


def _route(party: str, topic: str, channel: str, address: str) -> tuple[str, ...]:
    # An e-mail address is one mailbox whatever its case: listed twice, it
    # would get every notice twice.
    return (party, topic, channel, address.lower() if channel == "email" else address)


def add_contacts(conn: Connection, found: Iterable[Contact]) -> int:
    """Add contacts (one known already is kept as it is); returns how many new.

    An e-mail address known already in another case is known already.
    """
    c = AlertContactRow
    known = {
        _route(*r) for r in conn.execute(select(c.party, c.topic, c.channel, c.address))
    }
    values = []
    for person in found:
        route = _route(person.party, person.topic, person.channel, person.address)
        if route in known:
            continue
        known.add(route)
        values.append(
            {
                "name": person.name,
                "party": person.party,
                "topic": person.topic,
                "channel": person.channel,
                "address": person.address,
            }
        )
    if not values:
        return 0
    result = conn.execute(
        insert(AlertContactRow)
        .on_conflict_do_nothing()
        .returning(AlertContactRow.contact_id),
        values,
    )
    return len(result.all())


def contacts(conn: Connection) -> list[Contact]:
    """Every contact, by party, topic and address."""
    c = AlertContactRow
    rows = conn.execute(
        select(c.name, c.party, c.topic, c.channel, c.address, c.contact_id).order_by(
            c.party, c.topic, c.address
        )
    )
    return [Contact(*r) for r in rows]


def remove_contacts(
    conn: Connection, contact_id: int | None = None, address: str | None = None
) -> int:
    """Remove one contact by id, or every contact with an address; how many."""
    c = AlertContactRow
    stmt = delete(c)
    if contact_id is not None:
        stmt = stmt.where(c.contact_id == contact_id)
    elif address is not None:
        stmt = stmt.where(
            or_(
                c.address == address,
                and_(c.channel == "email", func.lower(c.address) == address.lower()),
            )
        )
    else:
        return 0
    return len(conn.execute(stmt.returning(c.contact_id)).all())


def acknowledge(
    conn: Connection, alert_id: int, by: str, now: datetime, note: str | None = None
) -> None:
    """Record that someone acknowledged an alert."""
    conn.execute(
        insert(AlertAcknowledgementRow).values(
            alert_id=alert_id, acknowledged_at=now, acknowledged_by=by, note=note
        )
    )


def pending_acks(conn: Connection, alert_ids: Sequence[int]) -> list[Ack]:
    """The newest acknowledgement of each firing alert.

    The core decides whether it covers the alert's last notice (an ack given
    before a `worsened` notice does not).
    """
    if not alert_ids:
        return []
    a, r = AlertAcknowledgementRow, AlertRow
    rows = conn.execute(
        select(a.alert_id, a.acknowledged_at, a.acknowledged_by)
        .join(r, r.alert_id == a.alert_id)
        .where(
            a.alert_id.in_(list(alert_ids)),
            r.state == "firing",
        )
        .order_by(a.alert_id, a.ack_id.desc())
    )
    newest: dict[int, Ack] = {}
    for alert_id, at, by in rows:
        newest.setdefault(alert_id, Ack(alert_id, at, by))
    return list(newest.values())
