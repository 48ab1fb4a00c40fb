"""SQLAlchemy models of the mobility tables (DDL in migration 0004).

`mobility_count` is partitioned by month (or a TimescaleDB hypertable); the
rollups `mobility_hourly`, `mobility_daily` and `mobility_yearly` are tables
or continuous aggregates depending on the branch, so they are read with SQL
in `klimapuls.storage.mobility`, not mapped here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    FetchedValue,
    Integer,
    Text,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from klimapuls.storage.models import Base

__all__ = ["MobilityCountRow", "MobilityModalSplitRow", "MobilityYearRow"]


class MobilityCountRow(Base):
    """One received count; restatements add rows, `is_current` marks the one used."""

    __tablename__ = "mobility_count"

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    interval_start: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True
    )
    # From the `mobility_count_seq` sequence: the rollups' watermark.
    seq: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    site_id: Mapped[str] = mapped_column(Text)
    site_kind: Mapped[str | None] = mapped_column(Text)
    municipality_code: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(Text)
    interval_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(BigInteger)
    delay_hours: Mapped[float | None] = mapped_column(Double)
    revision: Mapped[int] = mapped_column(Integer)
    is_current: Mapped[bool] = mapped_column(Boolean)
    #: Whether it took `is_current` from a stored count (the hour rollup then
    #: sums its hour again instead of adding it).
    restates: Mapped[bool] = mapped_column(Boolean, server_default=false())
    producer: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    payload_sha256: Mapped[str] = mapped_column(Text)


class MobilityModalSplitRow(Base):
    """Trips and share of one mode in a scope (municipality or region) and year."""

    __tablename__ = "mobility_modal_split"

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(Text, primary_key=True)
    trips: Mapped[int] = mapped_column(BigInteger)
    share_pct: Mapped[float | None] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class MobilityYearRow(Base):
    """The mobility indicators of a scope in a year, with month coverage."""

    __tablename__ = "mobility_year"

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    total_trips: Mapped[int] = mapped_column(BigInteger)
    sustainable_trips: Mapped[int] = mapped_column(BigInteger)
    sustainable_share_pct: Mapped[float | None] = mapped_column(Double)
    bike_trips: Mapped[int] = mapped_column(BigInteger)
    months_covered: Mapped[int] = mapped_column(Integer)
    counted: Mapped[bool] = mapped_column(Boolean)
    provisional: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
