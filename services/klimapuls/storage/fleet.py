"""Reads and idempotent writes of fleet snapshots and the derived fleet shares.

Owner: the fleet service. Snapshots are keyed by event id and judged by
`klimapuls.core.identity`, so a replay or a duplicate delivery changes
nothing, and a restatement adds a row beside the report it restates.
`fleet_share` is derived: it is rewritten from the snapshots, never
accumulated. `fleet_bus` holds the unit listing each bus on a date (the
newest list of every unit), read into a `klimapuls.core.fleet.BusRegister`
that refuses a report listing another unit's bus, as the offline fold does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, text
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.fleet import (
    PROPULSIONS,
    BusCounts,
    BusRegister,
    FleetShare,
    FleetSlot,
    FleetSnapshot,
)
from klimapuls.core.identity import Identity, Judgement, stored_identity
from klimapuls.storage.events import insert_new_events
from klimapuls.storage.models_fleet import FleetBusRow, FleetShareRow, FleetStatusRow

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


def _slot_params(slots: Sequence[FleetSlot]) -> dict[str, list[Any]]:
    """Units and dates as the column arrays `unnest` reads them from."""
    return {
        "operators": [unit[0] for unit, _ in slots],
        "contracts": [unit[1] for unit, _ in slots],
        "garages": [unit[2] for unit, _ in slots],
        "dates": [day for _, day in slots],
    }


def _slot_rows(conn: Connection, events: Sequence[dict[str, Any]]) -> list[RowMapping]:
    slots = sorted({FleetSnapshot.from_event(e).slot for e in events})
    return list(conn.execute(_SLOT_ROWS, _slot_params(slots)).mappings())


def _rivals(conn: Connection, events: Sequence[dict[str, Any]]) -> list[Identity]:
    """Every stored snapshot of the units and dates of `events`."""
    return [
        stored_identity(
            "fleet_status", r["event_id"], r["payload_sha256"], _snapshot(r)
        )
        for r in _slot_rows(conn, events)
    ]


_LISTED_BUSES = text(
    """
    SELECT b.* FROM fleet_bus b
    JOIN unnest(CAST(:operators AS text[]), CAST(:dates AS date[]))
        AS k(operator, date)
    ON b.operator = k.operator AND b.snapshot_date = k.date
    """
)


def _bus_register(conn: Connection, events: Sequence[dict[str, Any]]) -> BusRegister:
    """What `BusRegister.admit` needs to judge `events`.

    The buses listed on their operators' dates, and the ranks of their
    units' stored reports.
    """
    register = BusRegister()
    for r in _slot_rows(conn, events):
        slot = ((r["operator"], r["contract"] or "", r["garage"] or ""), r["date"])
        register.know(slot, (r["reported_at"], r["event_id"]))
    days = sorted({(e["operator"], FleetSnapshot.from_event(e).date) for e in events})
    lists: dict[Any, tuple[list[str], str]] = {}
    for r in conn.execute(
        _LISTED_BUSES,
        {"operators": [o for o, _ in days], "dates": [d for _, d in days]},
    ).mappings():
        slot = ((r["operator"], r["contract"], r["garage"]), r["snapshot_date"])
        lists.setdefault(slot, ([], r["event_id"]))[0].append(r["bus_id"])
    for slot, (buses, event_id) in lists.items():
        register.hold(slot, tuple(sorted(buses)), event_id)
    return register


def _write_bus_lists(conn: Connection, register: BusRegister) -> None:
    """Rewrite `fleet_bus` for the units and dates whose list changed."""
    touched = sorted(register.touched)
    if not touched:
        return
    conn.execute(
        text(
            """
            DELETE FROM fleet_bus b
            USING unnest(CAST(:operators AS text[]), CAST(:contracts AS text[]),
                CAST(:garages AS text[]), CAST(:dates AS date[]))
                AS k(operator, contract, garage, date)
            WHERE b.operator = k.operator AND b.contract = k.contract
                AND b.garage = k.garage AND b.snapshot_date = k.date
            """
        ),
        _slot_params(touched),
    )
    rows = [
        {
            "operator": unit[0],
            "contract": unit[1],
            "garage": unit[2],
            "snapshot_date": day,
            "bus_id": bus,
            "event_id": register.holders[(unit, day)],
        }
        for unit, day in touched
        for bus in register.lists.get((unit, day), ())
    ]
    if rows:
        conn.execute(insert(FleetBusRow), rows)


def store_fleet_status(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> list[Judgement]:
    """Judge and insert fleet events; one judgement per event, in order.

    A new report listing a bus another unit of its operator lists on its
    date is refused (`BusRegister.admit`); the stored lists follow the rest.
    """
    if not events:
        return []
    # One batch at a time reads and rewrites the lists (until the commit).
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.fleet.bus'))"))
    register = _bus_register(conn, events)
    judgements = insert_new_events(
        conn,
        "fleet_status",
        FleetStatusRow,
        events,
        _fleet_status_row,
        _rivals,
        register.admit,
    )
    _write_bus_lists(conn, register)
    return judgements


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


# Positional (every snapshot is read on each recomputation): the bus counts
# in `BusCounts`' field order, so each row's counts are one call.
_ALL_SNAPSHOTS = text(
    "SELECT event_id, producer, operator, contract, garage, municipality_code, "
    f"date, reported_at, {', '.join(f.name for f in fields(BusCounts))} "
    "FROM fleet_status"
)


def fleet_snapshots(conn: Connection) -> list[FleetSnapshot]:
    """Every stored snapshot, restatements included (the core folds them)."""
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
            buses=BusCounts(*r[8:]),
        )
        for r in conn.execute(_ALL_SNAPSHOTS).all()
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
