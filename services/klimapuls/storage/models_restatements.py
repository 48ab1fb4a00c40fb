"""SQLAlchemy model of the restatement log (DDL in migration 0011)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Double, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from klimapuls.storage.models import Base

__all__ = ["RestatementRow"]


class RestatementRow(Base):
    """A figure changed by a later report (`klimapuls.core.restatements`).

    Derived: the targets service rewrites it from the stored facts on every
    recomputation, so it always lists every restatement the facts hold.
    """

    __tablename__ = "restatement"

    family: Mapped[str] = mapped_column(Text, primary_key=True)
    restated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True
    )
    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[str] = mapped_column(Text, primary_key=True)
    sector: Mapped[str] = mapped_column(Text, primary_key=True)
    detail: Mapped[str] = mapped_column(Text, primary_key=True)
    producer: Mapped[str] = mapped_column(Text, primary_key=True)
    municipality_code: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(Text)
    old_value: Mapped[float] = mapped_column(Double)
    new_value: Mapped[float] = mapped_column(Double)
    change_pct: Mapped[float | None] = mapped_column(Double)
    old_vintage: Mapped[date | None] = mapped_column(Date)
    new_vintage: Mapped[date | None] = mapped_column(Date)
    regional: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index(None, "scope", "restated_at"),)
