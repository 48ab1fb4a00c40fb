"""Seed data: scopes and the targets of the domain brief.

Scopes are upserted (a renamed scope follows the package's reference data).
Seed targets are validated and stored like any `target` event, idempotently:
a seed target revised in `core/data/targets.json` must take a new version and
event id, or seeding stops with an error naming it (history is never
overwritten).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from klimapuls.core.errors import ConfigurationError
from klimapuls.core.model import INDICATOR_UNITS
from klimapuls.core.reference import scopes, seed_target_events
from klimapuls.core.validation import validate_event
from klimapuls.storage.repository import in_transaction, store_targets, upsert_scopes

__all__ = ["seed_reference_data"]


def seed_reference_data(engine: Engine) -> int:
    """Store the scopes and seed targets (idempotent); returns new target versions."""
    events = [validate_event("target", e) for e in seed_target_events()]

    def work(conn: Connection) -> int:
        upsert_scopes(conn, ((s.code, s.name, s.kind) for s in scopes()))
        added, clashes = store_targets(conn, events, INDICATOR_UNITS)
        if clashes:
            raise ConfigurationError(
                "seed targets changed without a new version (give the revision "
                f"a new version and event_id): {', '.join(clashes)}"
            )
        return added

    return in_transaction(engine, work)
