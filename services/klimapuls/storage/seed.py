"""Seed data: the targets of the domain brief, stored like any target event."""

from __future__ import annotations

from sqlalchemy import Engine

from klimapuls.core.model import INDICATOR_UNITS
from klimapuls.core.reference import seed_target_events
from klimapuls.core.validation import validate_event
from klimapuls.storage.repository import in_transaction, store_targets

__all__ = ["seed_reference_data"]


def seed_reference_data(engine: Engine) -> int:
    """Store the seed targets (idempotent); returns how many were new."""
    events = [validate_event("target", e) for e in seed_target_events()]
    added, _clashes = in_transaction(
        engine, lambda conn: store_targets(conn, events, INDICATOR_UNITS)
    )
    return added
