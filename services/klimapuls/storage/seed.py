"""Seed data: scopes, the targets of the domain brief, initiatives.

`klimapuls db upgrade` loads them through the owners' storage functions.
Scopes are upserted (a renamed scope follows the package's reference data).
Seed targets are judged and stored like any `target` event: a seed target
revised in `core/data/targets.json` must take a new version, or seeding stops
with an error naming it (history is never overwritten). A seed target is
known from its adoption date (its `reported_at`: Movia's fossil-free buses
from the traffic plan of 2016, the others from 1990, as no adoption date is
given); seeds stored with another date get this one on every upgrade.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.errors import ConfigurationError
from klimapuls.core.identity import Verdict
from klimapuls.core.reference import scopes, seed_target_events
from klimapuls.core.validation import validate_event
from klimapuls.storage.db import in_transaction
from klimapuls.storage.models import ScopeRow
from klimapuls.storage.targets import correct_known_from, store_targets

__all__ = ["seed_reference_data", "upsert_scopes"]


def upsert_scopes(conn: Connection, rows: Iterable[tuple[str, str, str]]) -> None:
    """Insert or rename scopes given as (code, name, kind)."""
    values = [{"code": c, "name": n, "kind": k} for c, n, k in rows]
    if not values:
        return
    stmt = insert(ScopeRow)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["code"],
            set_={"name": stmt.excluded.name, "kind": stmt.excluded.kind},
            where=(ScopeRow.name.is_distinct_from(stmt.excluded.name))
            | (ScopeRow.kind.is_distinct_from(stmt.excluded.kind)),
        ),
        values,
    )


def seed_reference_data(engine: Engine) -> int:
    """Store the scopes and seed targets (idempotent); returns new target versions."""
    events = [validate_event("target", e) for e in seed_target_events()]

    def work(conn: Connection) -> int:
        upsert_scopes(conn, ((s.code, s.name, s.kind) for s in scopes()))
        judgements = store_targets(conn, events)
        refused = [j for j in judgements if j.verdict is Verdict.REJECTED]
        if refused:
            raise ConfigurationError(
                "seed targets changed without a new version (give the revision "
                "a new version and event_id): "
                + ", ".join(j.identity.event_id for j in refused)
            )
        # Seeds stored before they carried their adoption date get it now.
        correct_known_from(conn, events)
        return sum(1 for j in judgements if j.verdict is Verdict.NEW)

    return in_transaction(engine, work)
