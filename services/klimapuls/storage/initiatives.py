"""Reads and idempotent writes of initiatives, status reports and tovholdere.

Owner: the initiatives service (the reference rows are seeded by
`klimapuls db upgrade` through `seed_initiatives` here).

Reports are keyed by event id (`ON CONFLICT DO NOTHING`); the derived
assignment and hand-over rows of an initiative are rewritten from the
reference set and all its stored reports with the pure rules of
`klimapuls.core.initiatives`, so replays, duplicates and reports arriving out
of order all end in the same rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.identity import Identity, Judgement, stored_identity
from klimapuls.core.initiatives import (
    PROGRAMME_INFRASTRUCTURE,
    REGION_TOVHOLDER,
    SECRETARIAT_TOVHOLDER,
    Initiative,
    StatusReport,
    reference_initiatives,
    round_start,
    tovholder_timeline,
)
from klimapuls.core.reference import municipalities
from klimapuls.storage.db import in_transaction
from klimapuls.storage.events import exact, insert_new_events
from klimapuls.storage.models_initiatives import (
    InitiativeRow,
    InitiativeStatusReportRow,
    InitiativeTovholderRow,
    TovholderAssignmentRow,
    TovholderHandoverRow,
    TovholderRow,
)

__all__ = [
    "handovers",
    "lock_initiatives",
    "missing_reports",
    "rebuild_timelines",
    "register_initiatives",
    "seed_initiative_reference",
    "seed_initiatives",
    "store_status_reports",
    "tovholder_assignments",
    "without_tovholder",
]

_REFERENCE = "reference"
_FROM_EVENTS = "event"


def lock_initiatives(conn: Connection) -> None:
    """Serialise timeline rebuilds of concurrent workers (and the seeding)."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.initiatives'))")
    )


def _tovholder_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"name": m.name, "kind": "municipality", "municipality_code": m.code}
        for m in municipalities()
    ]
    rows.append({"name": REGION_TOVHOLDER, "kind": "region", "municipality_code": None})
    rows.append(
        {
            "name": SECRETARIAT_TOVHOLDER,
            "kind": "secretariat",
            "municipality_code": None,
        }
    )
    return rows


def _initiative_row(item: Initiative, source: str) -> dict[str, Any]:
    return {
        "initiative_id": item.initiative_id,
        "name": item.name,
        "programme": item.programme,
        "group_name": item.group,
        "since": item.since,
        "year": item.year,
        "estimate_dkk_m": item.estimate_dkk_m,
        "note": item.note,
        "source": source,
    }


def seed_initiatives(conn: Connection) -> int:
    """Load the reference initiatives and tovholdere; returns initiatives added.

    Idempotent: reference rows are updated in place (corrections to the
    reference files apply), and every timeline is rebuilt from the data.
    """
    lock_initiatives(conn)
    stmt = insert(TovholderRow)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[TovholderRow.name],
            set_={
                "kind": stmt.excluded.kind,
                "municipality_code": stmt.excluded.municipality_code,
            },
        ),
        _tovholder_rows(),
    )
    reference = reference_initiatives()
    known = set(conn.execute(select(InitiativeRow.initiative_id)).scalars())
    rows = [_initiative_row(i, _REFERENCE) for i in reference]
    ins = insert(InitiativeRow)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[InitiativeRow.initiative_id],
            set_={
                c: ins.excluded[c]
                for c in (
                    "name",
                    "programme",
                    "group_name",
                    "since",
                    "year",
                    "estimate_dkk_m",
                    "note",
                    "source",
                )
            },
        ),
        rows,
    )
    ids = [i.initiative_id for i in reference]
    conn.execute(
        delete(InitiativeTovholderRow).where(
            InitiativeTovholderRow.initiative_id.in_(ids)
        )
    )
    links = [
        {"initiative_id": i.initiative_id, "tovholder": name, "position": n}
        for i in reference
        for n, name in enumerate(i.tovholdere)
    ]
    if links:
        conn.execute(insert(InitiativeTovholderRow), links)
    rebuild_timelines(conn, ids)
    return len(set(ids) - known)


def seed_initiative_reference(engine: Engine) -> int:
    """`seed_initiatives` in its own transaction (called by `prepare_database`)."""
    return in_transaction(engine, seed_initiatives)


def register_initiatives(conn: Connection, events: Sequence[dict[str, Any]]) -> int:
    """Add initiatives first seen in reports (known ones stay as registered)."""
    rows: dict[str, dict[str, Any]] = {}
    for e in events:
        rows.setdefault(
            e["initiative_id"],
            {
                "initiative_id": e["initiative_id"],
                "name": e.get("initiative_name") or e["initiative_id"],
                "programme": e.get("programme")
                or e.get("group")
                or PROGRAMME_INFRASTRUCTURE,
                "group_name": e.get("group") or "",
                "since": None,
                "year": None,
                "estimate_dkk_m": e.get("estimate_dkk_m"),
                "note": None,
                "source": _FROM_EVENTS,
            },
        )
    if not rows:
        return 0
    result = conn.execute(
        insert(InitiativeRow)
        .on_conflict_do_nothing()
        .returning(InitiativeRow.initiative_id),
        list(rows.values()),
    )
    return len(result.all())


def _status_report_row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "initiative_id": e["initiative_id"],
        "round": e["round"],
        "status": e["status"],
        # NULL: the report does not name tovholdere (the set stays).
        "tovholdere": None if e.get("tovholdere") is None else list(e["tovholdere"]),
        "effective_date": e.get("effective_date"),
        "estimate_dkk_m": exact(e.get("estimate_dkk_m")),
        "note": e.get("note"),
        "producer": e["producer"],
        "reported_at": e["reported_at"],
    }


def store_status_reports(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> list[Judgement]:
    """Judge and insert report events; one judgement per event, in order."""
    return insert_new_events(
        conn,
        "initiative_status",
        InitiativeStatusReportRow,
        events,
        _status_report_row,
        _rivals,
    )


def _report(r: Any) -> StatusReport:
    return StatusReport(
        event_id=r.event_id,
        initiative_id=r.initiative_id,
        round=r.round,
        status=r.status,
        tovholdere=None if r.tovholdere is None else tuple(r.tovholdere),
        reported_at=r.reported_at,
        effective_date=r.effective_date,
    )


def _rivals(conn: Connection, events: Sequence[dict[str, Any]]) -> list[Identity]:
    """Every stored report of the initiatives and rounds of `events`."""
    r = InitiativeStatusReportRow
    slots = {(e["initiative_id"], e["round"]) for e in events}
    rows = conn.execute(
        select(r).where(
            r.initiative_id.in_(sorted({i for i, _ in slots}))
            & r.round.in_(sorted({round_ for _, round_ in slots}))
        )
    )
    return [
        stored_identity(
            "initiative_status", row.event_id, row.payload_sha256, _report(row)
        )
        for row in rows
        if (row.initiative_id, row.round) in slots
    ]


def _reports(conn: Connection, ids: Collection[str]) -> dict[str, list[StatusReport]]:
    found: dict[str, list[StatusReport]] = {}
    for r in conn.execute(
        select(InitiativeStatusReportRow).where(
            InitiativeStatusReportRow.initiative_id.in_(list(ids))
        )
    ):
        found.setdefault(r.initiative_id, []).append(_report(r))
    return found


def rebuild_timelines(conn: Connection, initiative_ids: Iterable[str]) -> int:
    """Rewrite assignments and hand-overs of these initiatives; returns hand-overs."""
    ids = sorted(set(initiative_ids))
    if not ids:
        return 0
    initiatives = {
        r.initiative_id: r
        for r in conn.execute(
            select(InitiativeRow).where(InitiativeRow.initiative_id.in_(ids))
        )
    }
    reference: dict[str, list[str]] = {}
    for link in conn.execute(
        select(InitiativeTovholderRow)
        .where(InitiativeTovholderRow.initiative_id.in_(ids))
        .order_by(InitiativeTovholderRow.position)
    ):
        reference.setdefault(link.initiative_id, []).append(link.tovholder)
    reports = _reports(conn, ids)
    assignments: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for initiative_id in ids:
        row = initiatives.get(initiative_id)
        if row is None:
            continue
        own = reports.get(initiative_id, [])
        since = row.since
        if row.source == _FROM_EVENTS and own:
            # Known only from reports: listed since its first reported round.
            since = min(round_start(r.round) for r in own)
            conn.execute(
                update(InitiativeRow)
                .where(InitiativeRow.initiative_id == initiative_id)
                .values(since=since)
            )
        timeline = tovholder_timeline(
            initiative_id,
            reference.get(initiative_id, []) if row.source == _REFERENCE else None,
            since,
            own,
        )
        seq: dict[str, int] = {}
        for a in timeline.assignments:
            seq[a.tovholder] = seq.get(a.tovholder, -1) + 1
            assignments.append(
                {
                    "initiative_id": initiative_id,
                    "tovholder": a.tovholder,
                    "seq": seq[a.tovholder],
                    "valid_from": a.valid_from,
                    "valid_to": a.valid_to,
                    "from_round": a.from_round,
                    "to_round": a.to_round,
                }
            )
        changes.extend(
            {
                "initiative_id": initiative_id,
                "round": h.round,
                "effective_date": h.effective_date,
                "previous": list(h.previous),
                "new": list(h.new),
            }
            for h in timeline.handovers
        )
    conn.execute(
        delete(TovholderAssignmentRow).where(
            TovholderAssignmentRow.initiative_id.in_(ids)
        )
    )
    conn.execute(
        delete(TovholderHandoverRow).where(TovholderHandoverRow.initiative_id.in_(ids))
    )
    if assignments:
        conn.execute(insert(TovholderAssignmentRow), assignments)
    if changes:
        conn.execute(insert(TovholderHandoverRow), changes)
    return len(changes)


def _mappings(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def missing_reports(
    conn: Connection, round_: str | None = None
) -> list[dict[str, Any]]:
    """Missing reports (all rounds, or one), with who should have reported."""
    where = "WHERE round = :round" if round_ is not None else ""
    return _mappings(
        conn,
        f"SELECT * FROM initiative_missing_report {where} "
        "ORDER BY programme, round, initiative_id",
        round=round_,
    )


def without_tovholder(conn: Connection) -> list[dict[str, Any]]:
    """Open initiatives with nobody in charge now."""
    return _mappings(
        conn, "SELECT * FROM initiative_without_tovholder ORDER BY initiative_id"
    )


def handovers(
    conn: Connection, initiative_id: str | None = None
) -> list[dict[str, Any]]:
    """Tovholder hand-overs with their dates, oldest first."""
    where = "WHERE initiative_id = :i" if initiative_id is not None else ""
    return _mappings(
        conn,
        f"SELECT * FROM tovholder_handover {where} "
        "ORDER BY initiative_id, effective_date, round",
        i=initiative_id,
    )


def tovholder_assignments(
    conn: Connection, initiative_id: str, on: date | None = None
) -> list[dict[str, Any]]:
    """Assignments of an initiative (all, or those valid on a day)."""
    where = (
        " AND (valid_from IS NULL OR valid_from <= :on) "
        "AND (valid_to IS NULL OR :on < valid_to)"
        if on is not None
        else ""
    )
    return _mappings(
        conn,
        "SELECT * FROM tovholder_assignment WHERE initiative_id = :i"
        f"{where} ORDER BY valid_from NULLS FIRST, tovholder, seq",
        i=initiative_id,
        on=on,
    )
