"""Reads and idempotent writes of fleet snapshots and the derived fleet shares.

Owner: the fleet service. Snapshots are keyed by event id and judged by
`klimapuls.core.identity`, so a replay or a duplicate delivery changes
nothing, and a restatement adds a row beside the report it restates.
`fleet_share` is derived: it is rewritten from the snapshots, never
accumulated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, text
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.fleet import PROPULSIONS, BusCounts, FleetShare, FleetSnapshot
from klimapuls.core.identity import Identity, Judgement, stored_identity
from klimapuls.storage.events import insert_new_events
from klimapuls.storage.models_fleet import FleetShareRow, FleetStatusRow

__all__ = [
    "fleet_snapshots",
    "lock_fleet_shares",
    "store_fleet_status",
    "write_fleet_shares",
]


def _fleet_status_row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "operator": e["operator"],
        "contract": e.get("contract") or None,
        "garage": e.get("garage") or None,
        "municipality_code": e.get("municipality_code"),
        "date": e["date"],
        **{name: e["buses"].get(name, 0) for name in PROPULSIONS},
        "producer": e["producer"],
        "reported_at": e["reported_at"],
    }


_SLOT_ROWS = text(
    """
    SELECT f.* FROM fleet_status f
    JOIN unnest(CAST(:operators AS text[]), CAST(:contracts AS text[]),
        CAST(:garages AS text[]), CAST(:dates AS date[]))
        AS k(operator, contract, garage, date)
    ON f.operator = k.operator AND coalesce(f.contract, '') = k.contract
        AND coalesce(f.garage, '') = k.garage AND f.date = k.date
    """
)


def _rivals(conn: Connection, events: Sequence[dict[str, Any]]) -> list[Identity]:
    """Every stored snapshot of the units and dates of `events`."""
    slots = sorted({FleetSnapshot.from_event(e).slot for e in events})
    rows = conn.execute(
        _SLOT_ROWS,
        {
            "operators": [unit[0] for unit, _ in slots],
            "contracts": [unit[1] for unit, _ in slots],
            "garages": [unit[2] for unit, _ in slots],
            "dates": [day for _, day in slots],
        },
    ).mappings()
    return [
        stored_identity(
            "fleet_status", r["event_id"], r["payload_sha256"], _snapshot(r)
        )
        for r in rows
    ]


def store_fleet_status(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> list[Judgement]:
    """Judge and insert fleet events; one judgement per event, in order."""
    return insert_new_events(
        conn, "fleet_status", FleetStatusRow, events, _fleet_status_row, _rivals
    )


def lock_fleet_shares(conn: Connection) -> None:
    """Let one worker at a time rewrite the shares (until the commit)."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.fleet.shares'))")
    )


def _snapshot(r: Mapping[Any, Any]) -> FleetSnapshot:
    return FleetSnapshot(
        event_id=r["event_id"],
        producer=r["producer"],
        operator=r["operator"],
        contract=r["contract"],
        garage=r["garage"],
        municipality_code=r["municipality_code"],
        date=r["date"],
        reported_at=r["reported_at"],
        buses=BusCounts(**{name: r[name] for name in PROPULSIONS}),
    )


_ALL_SNAPSHOTS = text(
    "SELECT event_id, producer, operator, contract, garage, municipality_code, "
    f"date, reported_at, {', '.join(PROPULSIONS)} FROM fleet_status"
)


def fleet_snapshots(conn: Connection) -> list[FleetSnapshot]:
    """Every stored snapshot, restatements included (the core folds them)."""
    # Positional: every snapshot is read on each recomputation.
    return [
        FleetSnapshot(
            event_id=r[0],
            producer=r[1],
            operator=r[2],
            contract=r[3],
            garage=r[4],
            municipality_code=r[5],
            date=r[6],
            reported_at=r[7],
            buses=BusCounts(**dict(zip(PROPULSIONS, r[8:], strict=True))),
        )
        for r in conn.execute(_ALL_SNAPSHOTS)
    ]


def write_fleet_shares(
    conn: Connection, shares: Iterable[FleetShare], now: datetime
) -> int:
    """Replace `fleet_share` with `shares`; returns the rows written.

    The table is rewritten whole inside the caller's transaction, so readers
    see the old rows until it commits and never a mix.
    """
    rows = [
        {
            "scope": s.scope,
            "date": s.date,
            "total_buses": s.buses.total,
            "fossil_free_buses": s.buses.fossil_free,
            "zero_emission_buses": s.buses.zero_emission,
            "fossil_free_share": s.fossil_free_share,
            "zero_emission_share": s.zero_emission_share,
            "units": s.units,
            "updated_at": now,
        }
        for s in shares
    ]
    conn.execute(delete(FleetShareRow))
    if rows:
        conn.execute(insert(FleetShareRow), rows)
    return len(rows)
