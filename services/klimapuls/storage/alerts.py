"""Alert state, notices, deliveries and the send log (owner: the alerts service).

`alert_observation` remembers each target's newest logged evaluation;
`alert` holds every alert with its state (one open alert per key);
`alert_notice` every transition someone must hear of; `alert_delivery` one
notice for one contact; `alert_message` the send log: a message (a digest
of deliveries) is stored with its key and bytes before it is sent, and
marked sent in the same transaction that holds its row lock while sending.
No application logic here: the service decides (`klimapuls.core`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.alert_state import OPEN_STATES, Alert, Delivery, Notice
from klimapuls.core.alert_text import OutgoingMessage, notice_record
from klimapuls.core.alerting import TargetObservation
from klimapuls.storage.models_alerts import (
    AlertDeliveryRow,
    AlertEvaluationRow,
    AlertMessageRow,
    AlertNoticeRow,
    AlertObservationRow,
    AlertRow,
)

__all__ = [
    "Claimed",
    "alert_rows",
    "claim_message",
    "deliveries_of",
    "last_evaluation",
    "load_observations",
    "lock_alerts",
    "lock_sending",
    "mark_evaluated",
    "mark_failed",
    "mark_given_up",
    "mark_sent",
    "notice_records",
    "open_alerts",
    "pending_deliveries",
    "store_message",
    "write_alerts",
    "write_deliveries",
    "write_notices",
    "write_observations",
]


def lock_alerts(conn: Connection) -> None:
    """Let one evaluation at a time decide transitions (until the commit)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.alerts'))"))


def lock_sending(conn: Connection) -> None:
    """Let one sender at a time group deliveries into messages."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.alerts.send'))")
    )


def load_observations(conn: Connection) -> dict[str, TargetObservation]:
    """What is remembered of every target."""
    rows = conn.execute(select(AlertObservationRow.observation))
    found = (TargetObservation.from_json(r) for (r,) in rows)
    return {o.change.target_id: o for o in found}


def write_observations(
    conn: Connection, observations: Iterable[TargetObservation]
) -> None:
    """Upsert what is remembered of these targets."""
    values = [
        {
            "target_id": o.change.target_id,
            "change_id": o.change.id or 0,
            "observation": o.as_json(),
        }
        for o in observations
    ]
    if not values:
        return
    stmt = insert(AlertObservationRow)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["target_id"],
            set_={
                "change_id": stmt.excluded.change_id,
                "observation": stmt.excluded.observation,
                "updated_at": func.now(),
            },
        ),
        values,
    )


_ALERT_FIELDS = (
    "key",
    "rule",
    "subject",
    "scope",
    "period",
    "topic",
    "title",
    "state",
    "severity",
    "since",
    "target_id",
    "initiative_id",
    "inhibited_by",
    "notified_severity",
    "fired_at",
    "notified_at",
    "acknowledged_at",
    "acknowledged_by",
    "escalated_at",
    "ended_at",
    "worse_since",
)


def _alert(row: Any) -> Alert:
    values = {name: getattr(row, name) for name in _ALERT_FIELDS}
    return Alert(
        **values,
        parties=tuple(row.parties),
        facts=row.facts,
        notified_facts=row.notified_facts,
        alert_id=row.alert_id,
    )


def _alert_values(alert: Alert) -> dict[str, Any]:
    values = {name: getattr(alert, name) for name in _ALERT_FIELDS}
    values["parties"] = list(alert.parties)
    values["facts"] = dict(alert.facts)
    values["notified_facts"] = (
        dict(alert.notified_facts) if alert.notified_facts is not None else None
    )
    return values


def open_alerts(conn: Connection) -> list[Alert]:
    """Every alert that is not over (pending, firing, acknowledged)."""
    rows = conn.execute(
        select(AlertRow)
        .where(AlertRow.state.in_(OPEN_STATES))
        .order_by(AlertRow.alert_id)
    )
    return [_alert(r) for r in rows]


def write_alerts(conn: Connection, alerts: Sequence[Alert]) -> dict[str, int]:
    """Insert new alerts, update known ones; returns key -> alert id."""
    ids: dict[str, int] = {}
    for alert in alerts:
        values = _alert_values(alert)
        if alert.alert_id is None:
            ids[alert.key] = conn.execute(
                insert(AlertRow).values(**values).returning(AlertRow.alert_id)
            ).scalar_one()
        else:
            conn.execute(
                update(AlertRow)
                .where(AlertRow.alert_id == alert.alert_id)
                .values(**values, updated_at=func.now())
            )
            ids[alert.key] = alert.alert_id
    return ids


def write_notices(
    conn: Connection, notices: Sequence[Notice], ids: Mapping[str, int], now: datetime
) -> list[tuple[int, Notice]]:
    """Store notices (with their alert's id); returns (notice id, notice)."""
    stored = []
    for notice in notices:
        alert = replace(notice.alert, alert_id=ids[notice.alert.key])
        notice = replace(notice, alert=alert)
        notice_id = conn.execute(
            insert(AlertNoticeRow)
            .values(
                alert_id=alert.alert_id,
                kind=notice.kind,
                record=notice_record(notice),
                created_at=now,
            )
            .returning(AlertNoticeRow.notice_id)
        ).scalar_one()
        stored.append((notice_id, notice))
    return stored


def write_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store deliveries: `notice_id, recipient, party, channel, address, created_at`."""
    if rows:
        conn.execute(insert(AlertDeliveryRow), list(rows))


def mark_evaluated(conn: Connection, now: datetime, observed_id: int) -> None:
    """Record that an evaluation ran at `now` having seen changes up to an id."""
    stmt = insert(AlertEvaluationRow).values(
        id=1, evaluated_at=now, observed_id=observed_id
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "evaluated_at": stmt.excluded.evaluated_at,
                "observed_id": func.greatest(
                    AlertEvaluationRow.observed_id, stmt.excluded.observed_id
                ),
            },
        )
    )


def last_evaluation(conn: Connection) -> tuple[datetime, int] | None:
    """(evaluated_at, newest change id seen) of the last evaluation, if any."""
    row = conn.execute(
        select(AlertEvaluationRow.evaluated_at, AlertEvaluationRow.observed_id)
    ).first()
    return None if row is None else (row[0], row[1])


def pending_deliveries(conn: Connection) -> list[Delivery]:
    """Deliveries not yet in a message, oldest first."""
    d = AlertDeliveryRow
    rows = conn.execute(
        select(
            d.delivery_id, d.notice_id, d.channel, d.address, d.recipient, d.created_at
        )
        .where(d.message_id.is_(None))
        .order_by(d.delivery_id)
    )
    return [Delivery(*r) for r in rows]


def notice_records(
    conn: Connection, notice_ids: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """The stored records of these notices."""
    ids = sorted(set(notice_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(AlertNoticeRow.notice_id, AlertNoticeRow.record).where(
            AlertNoticeRow.notice_id.in_(ids)
        )
    )
    return {notice_id: record for notice_id, record in rows}


def store_message(
    conn: Connection,
    message: OutgoingMessage,
    delivery_ids: Sequence[int],
    now: datetime,
) -> int:
    """Store a message before it is sent, and tie its deliveries to it."""
    message_id = conn.execute(
        insert(AlertMessageRow)
        .values(
            message_key=message.key,
            channel=message.channel,
            address=message.address,
            recipient=message.recipient,
            subject=message.subject,
            body=message.text,
            payload=dict(message.payload),
            alert_keys=list(message.alert_keys),
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(AlertMessageRow.message_id)
    ).scalar_one()
    conn.execute(
        update(AlertDeliveryRow)
        .where(AlertDeliveryRow.delivery_id.in_(list(delivery_ids)))
        .values(message_id=message_id)
    )
    return cast("int", message_id)


class Claimed:
    """A message locked for sending until the transaction ends."""

    def __init__(self, row: Any) -> None:
        self.message_id: int = row.message_id
        self.attempts: int = row.attempts
        self.message = OutgoingMessage(
            key=row.message_key,
            channel=row.channel,
            address=row.address,
            recipient=row.recipient,
            subject=row.subject,
            text=row.body,
            alert_keys=tuple(row.alert_keys),
            payload=row.payload,
        )


def claim_message(conn: Connection, now: datetime) -> Claimed | None:
    """Lock the oldest message due for sending (others skip it), if any."""
    row = conn.execute(
        select(AlertMessageRow)
        .where(
            AlertMessageRow.state == "pending",
            AlertMessageRow.next_attempt_at <= now,
        )
        .order_by(AlertMessageRow.message_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    return None if row is None else Claimed(row)


def mark_sent(conn: Connection, message_id: int, now: datetime) -> None:
    """The channel took the message."""
    conn.execute(
        update(AlertMessageRow)
        .where(AlertMessageRow.message_id == message_id)
        .values(
            state="sent",
            sent_at=now,
            attempts=AlertMessageRow.attempts + 1,
            last_error=None,
        )
    )


def mark_failed(
    conn: Connection, message_id: int, error: str, retry_at: datetime
) -> None:
    """The channel refused or was away: try again at `retry_at`."""
    conn.execute(
        update(AlertMessageRow)
        .where(AlertMessageRow.message_id == message_id)
        .values(
            attempts=AlertMessageRow.attempts + 1,
            last_error=error[:500],
            next_attempt_at=retry_at,
        )
    )


def mark_given_up(conn: Connection, message_id: int, error: str) -> None:
    """The channel refused the message for good: `failed`, never retried."""
    conn.execute(
        update(AlertMessageRow)
        .where(AlertMessageRow.message_id == message_id)
        .values(
            state="failed",
            attempts=AlertMessageRow.attempts + 1,
            last_error=error[:500],
        )
    )


def alert_rows(conn: Connection, everything: bool = False) -> list[Alert]:
    """Open alerts (or all, newest first) for `klimapuls alerts list`."""
    query = select(AlertRow).order_by(AlertRow.alert_id.desc())
    if not everything:
        query = query.where(AlertRow.state.in_(OPEN_STATES))
    return [_alert(r) for r in conn.execute(query)]


def deliveries_of(conn: Connection, alert_ids: Sequence[int]) -> dict[int, list[str]]:
    """Who heard of each alert: `name <address> (channel, sent|pending|failed)`.

    A message given up on says why: `(email, failed: 550 ...)`.
    """
    if not alert_ids:
        return {}
    d, n, m = AlertDeliveryRow, AlertNoticeRow, AlertMessageRow
    rows = conn.execute(
        select(n.alert_id, d.recipient, d.address, d.channel, m.state, m.last_error)
        .join(n, n.notice_id == d.notice_id)
        .outerjoin(m, m.message_id == d.message_id)
        .where(n.alert_id.in_(list(alert_ids)))
        .order_by(d.delivery_id)
    )
    found: dict[int, list[str]] = {}
    for alert_id, recipient, address, channel, state, error in rows:
        outcome = state or "waiting"
        if state == "failed":
            outcome = f"failed: {error}"
        entry = f"{recipient} <{address}> ({channel}, {outcome})"
        if entry not in found.setdefault(alert_id, []):
            found[alert_id].append(entry)
    return found
