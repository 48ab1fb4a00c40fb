"""Reads and idempotent writes of the shared store.

Each write is keyed by event identity (`ON CONFLICT DO NOTHING`), so a replay
or duplicate delivery changes nothing. Driver errors leave this module as
`RetryableError` (connection trouble) with the cause chained, so callers never
see psycopg or SQLAlchemy exceptions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.exc import DBAPIError, OperationalError

from klimapuls.core.accounts import YearValue
from klimapuls.core.deadletter import DeadLetter
from klimapuls.core.errors import RetryableError
from klimapuls.core.model import Coverage, Progress, Target
from klimapuls.storage.models import (
    Co2AccountRow,
    DeadLetterRow,
    EmissionSeriesRow,
    IndicatorSeriesRow,
    ScopeRow,
    TargetProgressRow,
    TargetStatusChangeRow,
    TargetVersionRow,
)

__all__ = [
    "Rejected",
    "StatusChange",
    "current_targets",
    "in_transaction",
    "indicator_series",
    "is_rejected",
    "lock_outbox",
    "mark_published",
    "municipality_totals",
    "payload_digest",
    "reused_event_ids",
    "store_co2_accounts",
    "store_dead_letters",
    "store_new_events",
    "store_targets",
    "target_history",
    "target_versions",
    "unpublished_status_changes",
    "upsert_scopes",
    "write_indicator_series",
    "write_progress",
    "write_series",
]

T = TypeVar("T")
StatusChange = dict[str, Any]


#: Fields that say when and how a fact was sent, not what it is: a re-send of
#: the same fact (e.g. the same file imported again) differs only in these.
_ENVELOPE_TIME = ("reported_at",)


def payload_digest(event: dict[str, Any]) -> str:
    """A stable digest of an event's content, to spot a reused event id."""
    content = {k: v for k, v in event.items() if k not in _ENVELOPE_TIME}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction; connection failures become `RetryableError`."""
    try:
        with engine.begin() as conn:
            return work(conn)
    except OperationalError as exc:
        raise RetryableError(f"database unavailable: {exc.orig}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise RetryableError(f"database connection lost: {exc.orig}") from exc
        raise


def reused_event_ids(
    conn: Connection, table: Any, digests: dict[str, str]
) -> list[str]:
    """Event ids already stored with a different payload (a producer bug)."""
    if not digests:
        return []
    rows = conn.execute(
        select(table.event_id, table.payload_sha256).where(
            table.event_id.in_(list(digests))
        )
    )
    return [eid for eid, digest in rows if digests[eid] != digest]


Rejected = list[tuple[str, str]]


def store_new_events(
    conn: Connection,
    table: Any,
    events: Sequence[dict[str, Any]],
    row_of: Callable[[dict[str, Any]], dict[str, Any]],
) -> tuple[int, Rejected]:
    """Insert events keyed by `event_id`, each once.

    Returns (rows added, rejected `(event_id, digest)` pairs): events whose id
    is already stored, or earlier in the same batch, with other content. They
    are not written; the caller matches its events by id and digest and
    rejects those as dead letters. Exact repeats are plain duplicates.
    """
    if not events:
        return 0, []
    first: dict[str, tuple[dict[str, Any], str]] = {}
    rejected: set[tuple[str, str]] = set()
    for event in events:
        digest = payload_digest(event)
        kept = first.setdefault(event["event_id"], (event, digest))
        if kept[1] != digest:
            rejected.add((event["event_id"], digest))
    stored = reused_event_ids(conn, table, {eid: d for eid, (_, d) in first.items()})
    rejected |= {(eid, first[eid][1]) for eid in stored}
    rows = [
        {**row_of(event), "event_id": eid, "payload_sha256": digest}
        for eid, (event, digest) in first.items()
        if (eid, digest) not in rejected
    ]
    if not rows:
        return 0, sorted(rejected)
    result = conn.execute(
        insert(table).on_conflict_do_nothing().returning(table.event_id), rows
    )
    return len(result.all()), sorted(rejected)


def is_rejected(event: dict[str, Any], rejected: Rejected) -> bool:
    """Whether `store_new_events` refused this very event."""
    return (event["event_id"], payload_digest(event)) in set(rejected)


def _co2_account_row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "municipality_code": e["municipality_code"],
        "year": e["year"],
        "sector": e["sector"],
        "subsector": e.get("subsector"),
        "tonnes_co2e": e["tonnes_co2e"],
        "vintage": e["vintage"],
        "source": e["source"],
        "producer": e["producer"],
        "reported_at": e["reported_at"],
    }


def store_co2_accounts(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> tuple[int, Rejected]:
    """Insert account events; returns (rows added, rejected id/digest pairs)."""
    return store_new_events(conn, Co2AccountRow, events, _co2_account_row)


def store_targets(
    conn: Connection, events: Sequence[dict[str, Any]], units: dict[str, str]
) -> tuple[int, list[str]]:
    """Insert target versions; returns (rows added, ids that clash).

    A clash is an event id reused with other content, or a (target, version)
    already stored by another event: a revision must take a new version.
    """
    if not events:
        return 0, []
    # Within the batch: an id sent with two contents, or a version claimed by
    # two events, is refused (the first event of a version keeps it).
    digests: dict[str, str] = {}
    keys: dict[tuple[str, int], str] = {}
    clashes: set[str] = set()
    for e in events:
        if digests.setdefault(e["event_id"], payload_digest(e)) != payload_digest(e):
            clashes.add(e["event_id"])
        if (
            keys.setdefault((e["target_id"], e["version"]), e["event_id"])
            != e["event_id"]
        ):
            clashes.add(e["event_id"])
    clashes |= set(reused_event_ids(conn, TargetVersionRow, digests))
    for target_id, version, event_id in conn.execute(
        select(
            TargetVersionRow.target_id,
            TargetVersionRow.version,
            TargetVersionRow.event_id,
        ).where(TargetVersionRow.target_id.in_({t for t, _ in keys}))
    ):
        other = keys.get((target_id, version))
        if other is not None and other != event_id:
            clashes.add(other)
    rows = [
        {
            "target_id": e["target_id"],
            "version": e["version"],
            "event_id": e["event_id"],
            "name": e.get("name") or "",
            "scope": e["scope"],
            "indicator": e["indicator"],
            "unit": units.get(e["indicator"], ""),
            "baseline_year": e.get("baseline_year"),
            "baseline_value": e.get("baseline_value"),
            "target_year": e["target_year"],
            "reduction_pct": e.get("reduction_pct"),
            "increase_pct": e.get("increase_pct"),
            "target_value": e.get("target_value"),
            "source": e.get("source") or "",
            "producer": e["producer"],
            "reported_at": e["reported_at"],
            "payload_sha256": digests[e["event_id"]],
        }
        for e in events
        if e["event_id"] not in clashes
    ]
    added = 0
    if rows:
        result = conn.execute(
            insert(TargetVersionRow)
            .on_conflict_do_nothing()
            .returning(TargetVersionRow.event_id),
            rows,
        )
        added = len(result.all())
    return added, sorted(clashes)


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
    )


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


def target_versions(conn: Connection) -> list[Target]:
    """Every version of every target (the newest of each counts)."""
    rows = conn.execute(
        select(TargetVersionRow).order_by(
            TargetVersionRow.target_id, TargetVersionRow.version
        )
    )
    return [_target(TargetVersionRow(**r._mapping)) for r in rows]


def upsert_scopes(conn: Connection, scopes: Iterable[tuple[str, str, str]]) -> None:
    """Insert or rename scopes given as (code, name, kind)."""
    rows = [{"code": c, "name": n, "kind": k} for c, n, k in scopes]
    if not rows:
        return
    stmt = insert(ScopeRow)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["code"],
            set_={"name": stmt.excluded.name, "kind": stmt.excluded.kind},
            where=(ScopeRow.name.is_distinct_from(stmt.excluded.name))
            | (ScopeRow.kind.is_distinct_from(stmt.excluded.kind)),
        ),
        rows,
    )


def write_indicator_series(
    conn: Connection, indicator: str, scope: str, series: Iterable[YearValue]
) -> None:
    """Replace the yearly series of (`indicator`, `scope`) with `series`.

    Years no longer in `series` are removed, so a restatement that drops a
    year is followed; unchanged rows are left alone.
    """
    points = list(series)
    conn.execute(
        delete(IndicatorSeriesRow).where(
            (IndicatorSeriesRow.indicator == indicator)
            & (IndicatorSeriesRow.scope == scope)
            & IndicatorSeriesRow.year.not_in([p.year for p in points])
        )
    )
    if not points:
        return
    stmt = insert(IndicatorSeriesRow)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["indicator", "scope", "year"],
            set_={
                "value": stmt.excluded.value,
                "reported": stmt.excluded.reported,
                "expected": stmt.excluded.expected,
                "complete": stmt.excluded.complete,
                "updated_at": func.now(),
            },
            where=(IndicatorSeriesRow.value.is_distinct_from(stmt.excluded.value))
            | (IndicatorSeriesRow.reported.is_distinct_from(stmt.excluded.reported))
            | (IndicatorSeriesRow.expected.is_distinct_from(stmt.excluded.expected)),
        ),
        [
            {
                "indicator": indicator,
                "scope": scope,
                "year": p.year,
                "value": p.value,
                "reported": p.coverage.reported,
                "expected": p.coverage.expected,
                "complete": p.counted,
            }
            for p in points
        ],
    )


def indicator_series(conn: Connection) -> dict[tuple[str, str], dict[int, YearValue]]:
    """Every stored non-emission series, by (indicator, scope)."""
    result: dict[tuple[str, str], dict[int, YearValue]] = {}
    s = IndicatorSeriesRow
    rows = conn.execute(
        select(s.indicator, s.scope, s.year, s.value, s.reported, s.expected).order_by(
            s.indicator, s.scope, s.year
        )
    )
    for indicator, scope, year, value, reported, expected in rows:
        result.setdefault((indicator, scope), {})[year] = YearValue(
            year, float(value), Coverage(year, reported, expected)
        )
    return result


def municipality_totals(conn: Connection) -> dict[tuple[str, int], float]:
    """E(t) per (municipality, year) at the newest vintage of each sector."""
    rows = conn.execute(
        text(
            "SELECT municipality_code, year, sum(tonnes_co2e) "
            "FROM co2_account_current GROUP BY municipality_code, year"
        )
    )
    return {(code, year): float(total) for code, year, total in rows}


def write_series(conn: Connection, scope: str, series: Iterable[YearValue]) -> None:
    """Upsert E(t) of `scope`; unchanged rows are left alone."""
    rows = [
        {
            "scope": scope,
            "year": p.year,
            "tonnes_co2e": p.value,
            "reported": p.coverage.reported,
            "expected": p.coverage.expected,
            "complete": p.counted,
        }
        for p in series
    ]
    if not rows:
        return
    stmt = insert(EmissionSeriesRow)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["scope", "year"],
            set_={
                "tonnes_co2e": stmt.excluded.tonnes_co2e,
                "reported": stmt.excluded.reported,
                "expected": stmt.excluded.expected,
                "complete": stmt.excluded.complete,
                "updated_at": func.now(),
            },
            where=(
                EmissionSeriesRow.tonnes_co2e.is_distinct_from(
                    stmt.excluded.tonnes_co2e
                )
                | EmissionSeriesRow.reported.is_distinct_from(stmt.excluded.reported)
            ),
        ),
        rows,
    )


def _progress_row(p: Progress, now: datetime) -> dict[str, Any]:
    return {
        "target_id": p.target_id,
        "version": p.version,
        "name": p.name,
        "scope": p.scope,
        "indicator": p.indicator,
        "unit": p.unit,
        "baseline_year": p.baseline_year,
        "baseline_value": p.baseline_value,
        "target_year": p.target_year,
        "target_value": p.target_value,
        "latest_year": p.latest_year,
        "latest_value": p.latest_value,
        "reduction_achieved_pct": p.reduction_achieved_pct,
        "path_value": p.path_value,
        "gap_to_path": p.gap_to_path,
        "forecast_value": p.forecast_value,
        "required_annual_reduction": p.required_annual_reduction,
        "status": p.status,
        "stale": p.stale,
        "coverage_year": p.coverage.year,
        "coverage_reported": p.coverage.reported,
        "coverage_expected": p.coverage.expected,
        "as_of": p.as_of,
        "computed_at": now,
    }


def write_progress(
    conn: Connection, progress: Sequence[Progress], now: datetime
) -> list[StatusChange]:
    """Upsert the progress rows; log and return status changes.

    A change is a different status or staleness than the last logged one, so
    recomputing the same figures logs nothing.
    """
    last = {
        r.target_id: (r.status, r.stale)
        for r in conn.execute(
            select(
                TargetStatusChangeRow.target_id,
                TargetStatusChangeRow.status,
                TargetStatusChangeRow.stale,
            )
            .ext(distinct_on(TargetStatusChangeRow.target_id))
            .order_by(TargetStatusChangeRow.target_id, TargetStatusChangeRow.id.desc())
        )
    }
    changes: list[StatusChange] = []
    for p in progress:
        previous = last.get(p.target_id)
        if previous == (p.status, p.stale):
            continue
        changes.append(
            {
                "target_id": p.target_id,
                "version": p.version,
                "previous_status": previous[0] if previous else None,
                "status": p.status,
                "stale": p.stale,
                "latest_year": p.latest_year,
                "latest_value": p.latest_value,
                "gap_to_path": p.gap_to_path,
                "changed_at": now,
            }
        )
    if progress:
        stmt = insert(TargetProgressRow)
        row_keys = _progress_row(progress[0], now).keys() - {"target_id"}
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["target_id"],
                set_={k: stmt.excluded[k] for k in row_keys},
            ),
            [_progress_row(p, now) for p in progress],
        )
    if changes:
        conn.execute(insert(TargetStatusChangeRow), changes)
    return changes


_CHANGE_FIELDS = (
    "id",
    "target_id",
    "version",
    "previous_status",
    "status",
    "stale",
    "latest_year",
    "latest_value",
    "gap_to_path",
)


def unpublished_status_changes(conn: Connection) -> list[StatusChange]:
    """Status changes not yet on the `target-status` topic (the outbox)."""
    rows = conn.execute(
        select(TargetStatusChangeRow)
        .where(TargetStatusChangeRow.published_at.is_(None))
        .order_by(TargetStatusChangeRow.id)
    )
    return [
        {
            **{k: r[k] for k in _CHANGE_FIELDS},
            "changed_at": r["changed_at"].isoformat(),
        }
        for r in rows.mappings()
    ]


def lock_outbox(conn: Connection) -> None:
    """Serialise publishers of the status-change outbox until the commit."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.outbox'))"))


def mark_published(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Mark outbox rows as sent."""
    if ids:
        conn.execute(
            update(TargetStatusChangeRow)
            .where(TargetStatusChangeRow.id.in_(list(ids)))
            .values(published_at=now)
        )


def store_dead_letters(conn: Connection, letters: Sequence[DeadLetter]) -> int:
    """Insert dead letters, once per identity; returns rows added."""
    if not letters:
        return 0
    rows = [
        {
            "dead_letter_id": d.dead_letter_id,
            "origin": d.origin,
            "kind": d.kind,
            "event_id": d.event_id,
            "field": d.field,
            "reason": d.reason,
            "issues": d.issues,
            "payload": d.payload,
            "payload_encoding": d.payload_encoding,
            "payload_size": d.payload_size,
            "payload_sha256": d.payload_sha256,
            "payload_truncated": d.payload_truncated,
            "rejected_by": d.rejected_by,
            "rejected_at": d.rejected_at,
        }
        for d in letters
    ]
    result = conn.execute(
        insert(DeadLetterRow)
        .on_conflict_do_nothing()
        .returning(DeadLetterRow.dead_letter_id),
        rows,
    )
    return len(result.all())
