"""SQLAlchemy models: the durable state of Klimapuls.

Every table written from events is keyed by the event's identity, so a replay
or a duplicate delivery changes nothing. Derived tables (`emission_series`,
`target_progress`) are recomputed from the source tables, never accumulated.
Every table has one writer (the README's ownership table names it).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Co2AccountRow",
    "DeadLetterRow",
    "EmissionSeriesRow",
    "ScopeRow",
    "TargetProgressRow",
    "TargetSeriesRow",
    "TargetStatusChangeRow",
    "TargetTrajectoryRow",
    "TargetVersionRow",
]

_naming = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(referred_table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for migrations."""

    metadata = MetaData(naming_convention=_naming)


class Co2AccountRow(Base):
    """One received CO2 account figure; restatements add rows, never overwrite."""

    __tablename__ = "co2_account"

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    municipality_code: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(Integer)
    sector: Mapped[str] = mapped_column(Text)
    subsector: Mapped[str | None] = mapped_column(Text)
    tonnes_co2e: Mapped[Decimal] = mapped_column(Numeric)
    vintage: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(Text)
    producer: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    payload_sha256: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index(None, "municipality_code", "year", "sector", "vintage"),)


class TargetVersionRow(Base):
    """One version of a target; revisions add versions, history stays."""

    __tablename__ = "target_version"

    target_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text, server_default="")
    scope: Mapped[str] = mapped_column(Text)
    indicator: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)
    baseline_year: Mapped[int | None] = mapped_column(Integer)
    baseline_value: Mapped[Decimal | None] = mapped_column(Numeric)
    # None: the decision names no deadline (revision 0002).
    target_year: Mapped[int | None] = mapped_column(Integer)
    reduction_pct: Mapped[Decimal | None] = mapped_column(Numeric)
    increase_pct: Mapped[Decimal | None] = mapped_column(Numeric)
    target_value: Mapped[Decimal | None] = mapped_column(Numeric)
    source: Mapped[str] = mapped_column(Text, server_default="")
    producer: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    payload_sha256: Mapped[str] = mapped_column(Text)


class EmissionSeriesRow(Base):
    """E(t) of a scope (municipality or region) in a year, with coverage."""

    __tablename__ = "emission_series"

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    tonnes_co2e: Mapped[float] = mapped_column(Double)
    reported: Mapped[int] = mapped_column(Integer)
    expected: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class TargetProgressRow(Base):
    """The current standing of each target (newest version), recomputed."""

    __tablename__ = "target_progress"

    target_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    indicator: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)
    baseline_year: Mapped[int | None] = mapped_column(Integer)
    baseline_value: Mapped[float | None] = mapped_column(Double)
    # None: the decision names no deadline (revision 0002).
    target_year: Mapped[int | None] = mapped_column(Integer)
    target_value: Mapped[float | None] = mapped_column(Double)
    latest_year: Mapped[int | None] = mapped_column(Integer)
    latest_value: Mapped[float | None] = mapped_column(Double)
    reduction_achieved_pct: Mapped[float | None] = mapped_column(Double)
    path_value: Mapped[float | None] = mapped_column(Double)
    gap_to_path: Mapped[float | None] = mapped_column(Double)
    forecast_value: Mapped[float | None] = mapped_column(Double)
    required_annual_reduction: Mapped[float | None] = mapped_column(Double)
    status: Mapped[str] = mapped_column(Text)
    stale: Mapped[bool] = mapped_column(Boolean)
    coverage_year: Mapped[int | None] = mapped_column(Integer)
    coverage_reported: Mapped[int] = mapped_column(Integer)
    coverage_expected: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TargetStatusChangeRow(Base):
    """A target's status changed; also the outbox of the `target-status` topic.

    One row is one `klimapuls.core.messages.TargetStatusChange` (revision
    0007 added the figures alerts need; 0009 logs forecast moves too).
    """

    __tablename__ = "target_status_change"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    target_id: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text, server_default="")
    scope: Mapped[str] = mapped_column(Text, server_default="")
    indicator: Mapped[str] = mapped_column(Text, server_default="")
    unit: Mapped[str] = mapped_column(Text, server_default="")
    previous_status: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    previous_stale: Mapped[bool | None] = mapped_column(Boolean)
    stale: Mapped[bool] = mapped_column(Boolean)
    latest_year: Mapped[int | None] = mapped_column(Integer)
    latest_value: Mapped[float | None] = mapped_column(Double)
    target_year: Mapped[int | None] = mapped_column(Integer)
    target_value: Mapped[float | None] = mapped_column(Double)
    path_value: Mapped[float | None] = mapped_column(Double)
    gap_to_path: Mapped[float | None] = mapped_column(Double)
    forecast_value: Mapped[float | None] = mapped_column(Double)
    required_annual_reduction: Mapped[float | None] = mapped_column(Double)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The forecast logged before this row (revision 0009: forecast moves log).
    previous_forecast_value: Mapped[float | None] = mapped_column(Double)

    __table_args__ = (
        Index(None, "target_id", "changed_at"),
        ForeignKeyConstraint(
            ["target_id", "version"],
            ["target_version.target_id", "target_version.version"],
        ),
    )


class TargetTrajectoryRow(Base):
    """The path P(t) of a target's newest version in one year, for the boards."""

    __tablename__ = "target_trajectory"

    target_id: Mapped[str] = mapped_column(Text, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    path_value: Mapped[float] = mapped_column(Double)


class TargetSeriesRow(Base):
    """The value a target's newest version is measured against in one year."""

    __tablename__ = "target_series"

    target_id: Mapped[str] = mapped_column(Text, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    indicator: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Double)
    reported: Mapped[int] = mapped_column(Integer)
    expected: Mapped[int] = mapped_column(Integer)


class DeadLetterRow(Base):
    """A rejected event with the reason; keyed by where it came from."""

    __tablename__ = "dead_letter"

    dead_letter_id: Mapped[str] = mapped_column(Text, primary_key=True)
    origin: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(Text)
    field: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    issues: Mapped[list[dict[str, str]]] = mapped_column(JSONB)
    #: The raw message, cut to `core.deadletter.MAX_PAYLOAD_BYTES` (revision 0006).
    payload: Mapped[str] = mapped_column(Text)
    rejected_by: Mapped[str] = mapped_column(Text)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    #: `utf-8` (payload is the text) or `base64` (payload is base64 of the bytes).
    payload_encoding: Mapped[str] = mapped_column(Text, server_default="utf-8")
    #: Size and SHA-256 of the whole raw message, cut or not.
    payload_size: Mapped[int | None] = mapped_column(BigInteger)
    payload_sha256: Mapped[str | None] = mapped_column(Text)
    payload_truncated: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false")
    )

    __table_args__ = (
        Index(None, "kind", "rejected_at"),
        # The dead-letter-rate window (revision 0014).
        Index(None, "received_at"),
    )


class ScopeRow(Base):
    """Whose targets and series: a municipality, the region, Denmark or an operator.

    Seeded from `klimapuls.core.reference.scopes()` (revision 0002, then
    upserted by `storage.seed` so revised reference data flows in).
    """

    __tablename__ = "scope"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
