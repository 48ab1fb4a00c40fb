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
from itertools import compress
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
from klimapuls.core.identity import (
    Identity,
    Judgement,
    Ledger,
    Verdict,
    identity_of,
    resend_id,
    stored_identity,
)
from klimapuls.storage.db import as_json, copy_binary
from klimapuls.storage.events import may_be_resent
from klimapuls.storage.models_fleet import FleetBusRow, FleetShareRow
from klimapuls.storage.staging import Staging

__all__ = [
    "fleet_snapshots",
    "lock_fleet_shares",
    "store_fleet_status",
    "write_fleet_shares",
]


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


_KIND = "fleet_status"
_STAGE = "fleet_stage"
#: The staged columns and their binary COPY types; `reported_at` stays the
#: event's text, cast by the server on insert as a bound parameter was.
_STAGED: tuple[tuple[str, str], ...] = (
    ("idx", "int4"),
    ("event_id", "text"),
    ("resend_id", "text"),
    ("operator", "text"),
    ("contract", "text"),
    ("garage", "text"),
    ("municipality_code", "text"),
    ("date", "date"),
    *((name, "int4") for name in PROPULSIONS),
    ("producer", "text"),
    ("reported_at", "text"),
    ("payload_sha256", "text"),
)
_STAGING = Staging(_STAGE, _STAGED)


def _staged_row(
    index: int, event: Mapping[str, Any], identity: Identity
) -> tuple[Any, ...]:
    snapshot = _snapshot_in(identity)
    buses = event["buses"]
    return (
        index,
        snapshot.event_id,
        resend_id(snapshot.event_id, event["reported_at"]),
        snapshot.operator,
        snapshot.contract,
        snapshot.garage,
        snapshot.municipality_code,
        snapshot.date,
        *(int(buses.get(name, 0)) for name in PROPULSIONS),
        event["producer"],
        event["reported_at"],
        identity.digest,
    )


def _snapshot_in(identity: Identity) -> FleetSnapshot:
    """The snapshot an identity was built from (`identity_of` builds it once)."""
    fact = identity.fact
    if not isinstance(fact, FleetSnapshot):  # pragma: no cover - a bug
        raise TypeError(f"{identity.event_id!r} carries no fleet snapshot")
    return fact


_LISTED_ON_STAGED_DAYS = text(
    f"""
    SELECT EXISTS (
        SELECT 1 FROM (SELECT DISTINCT operator, date FROM {_STAGE}) AS k
        JOIN fleet_bus b ON b.operator = k.operator AND b.snapshot_date = k.date
    )
    """
)


def _lists_matter(conn: Connection, events: Sequence[dict[str, Any]]) -> bool:
    """Whether the bus register can refuse or change anything for `events`.

    Only if an event lists buses, or a unit lists some on an event's
    operator and date (a newer report clears or replaces that list):
    otherwise `BusRegister.admit` admits every report and no list changes.
    """
    if any(e.get("bus_ids") for e in events):
        return True
    return bool(conn.execute(_LISTED_ON_STAGED_DAYS).scalar())


_INSERT_STAGED = text(
    f"""
    INSERT INTO fleet_status (event_id, operator, contract, garage,
        municipality_code, date, {", ".join(PROPULSIONS)}, producer,
        reported_at, payload_sha256)
    SELECT n.e, s.operator, s.contract, s.garage, s.municipality_code, s.date,
        {", ".join(f"s.{name}" for name in PROPULSIONS)}, s.producer,
        CAST(s.reported_at AS timestamptz), s.payload_sha256
    FROM json_to_recordset(CAST(:new AS json)) AS n(i integer, e text)
    JOIN {_STAGE} s ON s.idx = n.i
    ORDER BY n.i
    ON CONFLICT DO NOTHING
    RETURNING event_id
    """
)


def store_fleet_status(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> list[Judgement]:
    """Judge and insert fleet events; one judgement per event, in order.

    A new report listing a bus another unit of its operator lists on its
    date is refused (`BusRegister.admit`); the stored lists follow the rest.
    A new event another writer stored in the meantime (the insert found its
    key taken) is reported as a duplicate; a re-sent fact that wins back its
    slot is inserted under its `resend_id` with its new `reported_at`.
    """
    if not events:
        return []
    # The identities and the staging need no other writer's rows: before the lock.
    identities = [identity_of(_KIND, event) for event in events]
    _STAGING.stage(
        conn,
        (
            _staged_row(i, event, identity)
            for i, (event, identity) in enumerate(zip(events, identities, strict=True))
        ),
    )
    # One batch at a time reads and rewrites the lists (until the commit).
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.fleet.bus'))"))
    register = _bus_register(conn, events) if _lists_matter(conn, events) else None
    known = _STAGING.stored(conn, "fleet_status", _KIND)
    stored = {identity.event_id for identity in known}
    again = list(compress(events, may_be_resent(events, stored)))
    ledger = Ledger.of(_KIND, known, _rivals(conn, again) if again else [])
    admit = register.admit if register is not None else None
    judgements = [
        ledger.judge(event, admit, identity=identity)
        for event, identity in zip(events, identities, strict=True)
    ]
    if register is not None:
        _write_bus_lists(conn, register)
    new = [
        {"i": i, "e": j.identity.event_id}
        for i, j in enumerate(judgements)
        if j.verdict is Verdict.NEW
    ]
    if not new:
        return judgements
    inserted = set(conn.execute(_INSERT_STAGED, {"new": as_json(new)}).scalars())
    return [
        Judgement(Verdict.DUPLICATE, j.identity)
        if j.verdict is Verdict.NEW and j.identity.event_id not in inserted
        else j
        for j in judgements
    ]


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
            # The columns in the order of `PROPULSIONS`, the fields' order.
            buses=BusCounts(*r[8:]),
        )
        for r in conn.execute(_ALL_SNAPSHOTS).all()
    ]


_SHARE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("scope", "text"),
    ("date", "date"),
    ("total_buses", "int4"),
    ("fossil_free_buses", "int4"),
    ("zero_emission_buses", "int4"),
    ("fossil_free_share", "float8"),
    ("zero_emission_share", "float8"),
    ("units", "int4"),
    ("updated_at", "timestamptz"),
)


def write_fleet_shares(
    conn: Connection, shares: Iterable[FleetShare], now: datetime
) -> int:
    """Replace `fleet_share` with `shares`; returns the rows written.

    The table is rewritten whole inside the caller's transaction, so readers
    see the old rows until it commits and never a mix.
    """
    rows = [
        (
            s.scope,
            s.date,
            s.buses.total,
            s.buses.fossil_free,
            s.buses.zero_emission,
            s.fossil_free_share,
            s.zero_emission_share,
            s.units,
            now,
        )
        for s in shares
    ]
    conn.execute(delete(FleetShareRow))
    if rows:
        copy_binary(conn, "fleet_share", _SHARE_COLUMNS, rows)
    return len(rows)
