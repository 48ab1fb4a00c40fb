"""SQLAlchemy models of initiatives, status reports and tovholdere.

`initiative`, `initiative_tovholder` and `tovholder` are reference data
(seeded from the VIP tables, extended by reports of new initiatives).
`initiative_status_report` keeps every report, keyed by event id, so
restatements add rows. `tovholder_assignment` and `tovholder_handover` are
derived per initiative from the reference set and the current reports, and
rewritten, never accumulated. Missing reports and initiatives without a
tovholder are views (migration 0005).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Double, Index, Integer, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from klimapuls.storage.models import Base

__all__ = [
    "InitiativeRow",
    "InitiativeStatusReportRow",
    "InitiativeTovholderRow",
    "TovholderAssignmentRow",
    "TovholderHandoverRow",
    "TovholderRow",
]


class TovholderRow(Base):
    """Who can lead an initiative: a municipality, the region, the secretariat."""

    __tablename__ = "tovholder"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    municipality_code: Mapped[str | None] = mapped_column(Text)


class InitiativeRow(Base):
    """An initiative followed by status reports, in one programme."""

    __tablename__ = "initiative"

    initiative_id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    programme: Mapped[str] = mapped_column(Text)
    group_name: Mapped[str] = mapped_column(Text)
    since: Mapped[date | None] = mapped_column(Date)
    year: Mapped[int | None] = mapped_column(Integer)
    estimate_dkk_m: Mapped[float | None] = mapped_column(Double)
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "programme"),)


class InitiativeTovholderRow(Base):
    """A tovholder of an initiative as listed in the reference data."""

    __tablename__ = "initiative_tovholder"

    initiative_id: Mapped[str] = mapped_column(Text, primary_key=True)
    tovholder: Mapped[str] = mapped_column(Text, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class InitiativeStatusReportRow(Base):
    """One received status report; a restatement adds a row, never overwrites."""

    __tablename__ = "initiative_status_report"

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    initiative_id: Mapped[str] = mapped_column(Text)
    round: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    #: NULL when the report does not name them (revision 0011).
    tovholdere: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    effective_date: Mapped[date | None] = mapped_column(Date)
    estimate_dkk_m: Mapped[float | None] = mapped_column(Double)
    note: Mapped[str | None] = mapped_column(Text)
    producer: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    payload_sha256: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "initiative_id", "round", "reported_at"),)


class TovholderAssignmentRow(Base):
    """A tovholder in charge of an initiative in `[valid_from, valid_to)` (derived)."""

    __tablename__ = "tovholder_assignment"

    initiative_id: Mapped[str] = mapped_column(Text, primary_key=True)
    tovholder: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    from_round: Mapped[str | None] = mapped_column(Text)
    to_round: Mapped[str | None] = mapped_column(Text)


class TovholderHandoverRow(Base):
    """The tovholdere of an initiative changed in a round (derived)."""

    __tablename__ = "tovholder_handover"

    initiative_id: Mapped[str] = mapped_column(Text, primary_key=True)
    round: Mapped[str] = mapped_column(Text, primary_key=True)
    effective_date: Mapped[date] = mapped_column(Date)
    previous: Mapped[list[str]] = mapped_column(ARRAY(Text))
    new: Mapped[list[str]] = mapped_column(ARRAY(Text))
