"""SQLAlchemy models of alerts, their notices and deliveries, contacts, acks.

Writers (one per table): the alerts service writes `alert_observation`,
`alert`, `alert_notice`, `alert_delivery`, `alert_message` and
`alert_evaluation`; `klimapuls contacts` writes `alert_contact`;
`klimapuls alerts ack` writes `alert_acknowledgement` (the service reads
it and moves the alert on). Migration 0009; 0014 added `alert.worse_since`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, Text, func
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from klimapuls.storage.models import Base

__all__ = [
    "AlertAcknowledgementRow",
    "AlertContactRow",
    "AlertDeliveryRow",
    "AlertEvaluationRow",
    "AlertMessageRow",
    "AlertNoticeRow",
    "AlertObservationRow",
    "AlertRow",
]


class AlertObservationRow(Base):
    """What the alert rules remember of a target: its newest logged evaluation."""

    __tablename__ = "alert_observation"

    target_id: Mapped[str] = mapped_column(Text, primary_key=True)
    #: `id` of the newest `target_status.v1` message folded in.
    change_id: Mapped[int] = mapped_column(BigInteger)
    observation: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AlertRow(Base):
    """An alert: one condition's life from first seen to resolved or cleared."""

    __tablename__ = "alert"

    alert_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=True
    )
    key: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    period: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(Text)
    parties: Mapped[list[str]] = mapped_column(ARRAY(Text))
    title: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    target_id: Mapped[str | None] = mapped_column(Text)
    initiative_id: Mapped[str | None] = mapped_column(Text)
    inhibited_by: Mapped[str | None] = mapped_column(Text)
    notified_severity: Mapped[str | None] = mapped_column(Text)
    notified_facts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: When a worse severity than the notified one began (it must hold too).
    worse_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        # One open alert per key; ended ones are history.
        Index(
            "uq_alert_open_key",
            "key",
            unique=True,
            postgresql_where=sql_text("state IN ('pending', 'firing', 'acknowledged')"),
        ),
        Index(None, "state"),
    )


class AlertNoticeRow(Base):
    """One transition someone must hear of (firing, worsened, resolved, escalated)."""

    __tablename__ = "alert_notice"

    notice_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=True
    )
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alert.alert_id"))
    kind: Mapped[str] = mapped_column(Text)
    #: What the message needs (`klimapuls.core.alert_text.notice_record`).
    record: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertMessageRow(Base):
    """One message to one recipient (a digest of deliveries): the send log.

    Built and stored before it is sent, so a retry or a restart sends the
    same bytes under the same `message_key`.
    """

    __tablename__ = "alert_message"

    message_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=True
    )
    message_key: Mapped[str] = mapped_column(Text, unique=True)
    channel: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    alert_keys: Mapped[list[str]] = mapped_column(ARRAY(Text))
    #: `pending` until a channel took it, then `sent`; `failed` when the
    #: channel refused it for good (`last_error` says why).
    state: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default=sql_text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index(None, "state", "next_attempt_at"),)


class AlertDeliveryRow(Base):
    """One notice for one contact on one channel; `message_id` once grouped."""

    __tablename__ = "alert_delivery"

    delivery_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=True
    )
    notice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("alert_notice.notice_id")
    )
    recipient: Mapped[str] = mapped_column(Text)
    party: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("alert_message.message_id")
    )

    __table_args__ = (Index(None, "message_id"),)


class AlertEvaluationRow(Base):
    """When the alert service last evaluated, and the newest change it had seen."""

    __tablename__ = "alert_evaluation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    observed_id: Mapped[int] = mapped_column(BigInteger)


class AlertContactRow(Base):
    """Someone who hears of a party's alerts on a topic (writer: `contacts`)."""

    __tablename__ = "alert_contact"

    contact_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=True
    )
    name: Mapped[str] = mapped_column(Text)
    party: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        Index(
            "uq_alert_contact_route",
            "party",
            "topic",
            "channel",
            "address",
            unique=True,
        ),
    )


class AlertAcknowledgementRow(Base):
    """Someone acknowledged an alert (writer: `klimapuls alerts ack`)."""

    __tablename__ = "alert_acknowledgement"

    ack_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=True
    )
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alert.alert_id"))
    acknowledged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
