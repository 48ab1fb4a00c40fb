"""SQLAlchemy models of the bus fleet: received snapshots and derived shares.

`fleet_status` keeps every report (restatements add rows, never overwrite);
`fleet_bus` holds the unit listing each bus on a date (its newest list);
`fleet_share` is recomputed from `fleet_status` by the fleet service, one row per scope
(operator, or `1084` for the region) and snapshot date, for Grafana.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Double, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from klimapuls.storage.models import Base

__all__ = ["FleetBusRow", "FleetShareRow", "FleetStatusRow"]


class FleetStatusRow(Base):
    """One received fleet snapshot: a unit's buses by propulsion on a date."""

    __tablename__ = "fleet_status"

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    operator: Mapped[str] = mapped_column(Text)
    contract: Mapped[str | None] = mapped_column(Text)
    garage: Mapped[str | None] = mapped_column(Text)
    municipality_code: Mapped[str | None] = mapped_column(Text)
    date: Mapped[date] = mapped_column(Date)
    diesel: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    hvo: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    biogas: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    battery_electric: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    hydrogen: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    hybrid: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    producer: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    payload_sha256: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "operator", "contract", "garage", "date"),)


class FleetShareRow(Base):
    """The fleet of a scope on a date: totals and shares, recomputed."""

    __tablename__ = "fleet_share"

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    total_buses: Mapped[int] = mapped_column(Integer)
    fossil_free_buses: Mapped[int] = mapped_column(Integer)
    zero_emission_buses: Mapped[int] = mapped_column(Integer)
    fossil_free_share: Mapped[float | None] = mapped_column(Double)
    zero_emission_share: Mapped[float | None] = mapped_column(Double)
    units: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class FleetBusRow(Base):
    """A bus and the unit whose newest report lists it on a date (one unit)."""

    __tablename__ = "fleet_bus"

    operator: Mapped[str] = mapped_column(Text, primary_key=True)
    snapshot_date: Mapped[date] = mapped_column(Date, primary_key=True)
    bus_id: Mapped[str] = mapped_column(Text, primary_key=True)
    #: '' where the report names no contract (as in `core.fleet.UnitKey`).
    contract: Mapped[str] = mapped_column(Text)
    #: '' where the report names no garage.
    garage: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        {
            "comment": (
                "The unit (contract/garage) listing each bus on a date (owner: fleet)"
            )
        },
    )
