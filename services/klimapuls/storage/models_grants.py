"""SQLAlchemy models of producer grants and the gateway's API tokens.

Written only through `klimapuls.storage.grants` (by `klimapuls tokens` and,
for the built-in producers, `klimapuls db upgrade`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from klimapuls.storage.models import Base

__all__ = ["ProducerGrantRow", "ProducerTokenRow"]


class ProducerGrantRow(Base):
    """A producer may write a scope (or `*`) in a family (or `*`)."""

    __tablename__ = "producer_grant"

    producer: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    granted_by: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ProducerTokenRow(Base):
    """An API token of a producer: its public id and the SHA-256 of its secret."""

    __tablename__ = "producer_token"

    token_id: Mapped[str] = mapped_column(Text, primary_key=True)
    producer: Mapped[str] = mapped_column(Text, index=True)
    secret_sha256: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
