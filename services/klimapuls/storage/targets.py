"""Target versions: idempotent writes (owner: the targets service) and reads.

A version is keyed by (`target_id`, `version`) and judged by
`klimapuls.core.identity`: the same definition again is a duplicate
(whatever its event id), another definition under a used version is
refused, an event id names one version only, and a new version cannot move
its target to another scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, any_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert

from klimapuls.core.identity import Identity, Judgement, Ledger, Verdict
from klimapuls.core.model import INDICATOR_UNITS, Target
from klimapuls.storage.events import exact
from klimapuls.storage.models import TargetVersionRow

__all__ = [
    "correct_known_from",
    "current_targets",
    "store_targets",
    "target_history",
    "target_versions",
]

_KIND = "target"


def _stored(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> tuple[list[Identity], dict[str, str]]:
    """The stored versions the events may clash with, and their targets' scopes."""
    if not events:
        return [], {}
    t = TargetVersionRow
    ids = bindparam("ids", [e["target_id"] for e in events], type_=ARRAY(Text))
    eids = bindparam("eids", [e["event_id"] for e in events], type_=ARRAY(Text))
    rows = conn.execute(
        select(t.target_id, t.version, t.event_id, t.payload_sha256, t.scope)
        .where(or_(t.target_id == any_(ids), t.event_id == any_(eids)))
        .order_by(t.target_id, t.version)
    )
    known: list[Identity] = []
    scopes: dict[str, str] = {}
    for target_id, version, event_id, digest, scope in rows:
        known.append(Identity((_KIND, target_id, str(version)), event_id, digest))
        scopes.setdefault(target_id, scope)
    return known, scopes


def _row(event: dict[str, Any], digest: str) -> dict[str, Any]:
    return {
        "target_id": event["target_id"],
        "version": event["version"],
        "event_id": event["event_id"],
        "name": event.get("name") or "",
        "scope": event["scope"],
        "indicator": event["indicator"],
        "unit": INDICATOR_UNITS.get(event["indicator"], ""),
        "baseline_year": event.get("baseline_year"),
        "baseline_value": exact(event.get("baseline_value")),
        "target_year": event["target_year"],
        "reduction_pct": exact(event.get("reduction_pct")),
        "increase_pct": exact(event.get("increase_pct")),
        "target_value": exact(event.get("target_value")),
        "source": event.get("source") or "",
        "producer": event["producer"],
        "reported_at": event["reported_at"],
        "payload_sha256": digest,
    }


def store_targets(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> list[Judgement]:
    """Judge and insert target versions; one judgement per event, in order."""
    known, scopes = _stored(conn, events)
    ledger = Ledger.of(_KIND, known, scopes=scopes)
    judgements = [ledger.judge(event) for event in events]
    rows = [
        _row(event, j.identity.digest)
        for event, j in zip(events, judgements, strict=True)
        if j.verdict is Verdict.NEW
    ]
    if rows:
        conn.execute(insert(TargetVersionRow).on_conflict_do_nothing(), rows)
    return judgements


def correct_known_from(conn: Connection, events: Sequence[dict[str, Any]]) -> int:
    """Set the `reported_at` of stored seed versions to that of `events`.

    A seed target is known from its adoption date (`core/data/targets.json`),
    not from the day it was first seeded; versions stored by an older seed
    keep their definition (a duplicate) but get the corrected date. Only
    rows stored under the seed's own event id and producer change. Returns
    the rows corrected.
    """
    t = TargetVersionRow
    corrected = 0
    for event in events:
        result = conn.execute(
            update(t)
            .where(
                t.event_id == event["event_id"],
                t.producer == event["producer"],
                t.reported_at != datetime.fromisoformat(event["reported_at"]),
            )
            .values(reported_at=event["reported_at"])
        )
        corrected += result.rowcount
    return corrected


def _target(row: TargetVersionRow) -> Target:
    def _f(value: Any) -> float | None:
        return None if value is None else float(value)

    return Target(
        target_id=row.target_id,
        version=row.version,
        scope=row.scope,
        indicator=row.indicator,
        target_year=row.target_year,
        baseline_year=row.baseline_year,
        baseline_value=_f(row.baseline_value),
        reduction_pct=_f(row.reduction_pct),
        increase_pct=_f(row.increase_pct),
        target_value=_f(row.target_value),
        name=row.name,
        source=row.source,
        unit=row.unit,
        reported_at=row.reported_at,
    )


def target_versions(conn: Connection) -> list[Target]:
    """Every version of every target (the newest of each counts)."""
    rows = conn.execute(
        select(TargetVersionRow).order_by(
            TargetVersionRow.target_id, TargetVersionRow.version
        )
    )
    return [_target(TargetVersionRow(**r._mapping)) for r in rows]


def current_targets(conn: Connection) -> list[Target]:
    """The newest version of every target."""
    newest = (
        select(
            TargetVersionRow.target_id, func.max(TargetVersionRow.version).label("v")
        )
        .group_by(TargetVersionRow.target_id)
        .subquery()
    )
    rows = conn.execute(
        select(TargetVersionRow)
        .join(
            newest,
            (TargetVersionRow.target_id == newest.c.target_id)
            & (TargetVersionRow.version == newest.c.v),
        )
        .order_by(TargetVersionRow.target_id)
    )
    return [_target(TargetVersionRow(**r._mapping)) for r in rows]


def target_history(conn: Connection, target_id: str) -> list[Target]:
    """Every version of one target, oldest first."""
    rows = conn.execute(
        select(TargetVersionRow)
        .where(TargetVersionRow.target_id == target_id)
        .order_by(TargetVersionRow.version)
    )
    return [_target(TargetVersionRow(**r._mapping)) for r in rows]
