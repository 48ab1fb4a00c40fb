"""Target progress, trajectories and the status-change log (owner: targets service).

`target_progress` holds where each target stands (its newest version),
`target_trajectory` the path P(t) of each year for the boards, and
`target_status_change` every change of status or staleness and every move
of the forecast (an evaluation the alert rules compare); the latter is
also the outbox of the `target-status` topic (`klimapuls.storage.outbox`).
All three are derived: recomputing the same facts changes nothing and logs
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, delete, select, text
from sqlalchemy.dialects.postgresql import distinct_on, insert

from klimapuls.core.accounts import YearValue
from klimapuls.core.messages import LastEvaluation, TargetStatusChange
from klimapuls.core.model import Progress, Status, Target
from klimapuls.storage.models import (
    TargetProgressRow,
    TargetSeriesRow,
    TargetStatusChangeRow,
    TargetTrajectoryRow,
)

__all__ = [
    "last_statuses",
    "lock_progress",
    "log_status_changes",
    "progress_rows",
    "write_progress",
    "write_series",
    "write_trajectories",
]


def lock_progress(conn: Connection) -> None:
    """Let one recomputation at a time log changes (until the commit)."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.targets.progress'))")
    )


def last_statuses(conn: Connection) -> dict[str, LastEvaluation]:
    """The last logged (status, stale, forecast) of every target."""
    c = TargetStatusChangeRow
    rows = conn.execute(
        select(c.target_id, c.status, c.stale, c.forecast_value)
        .ext(distinct_on(c.target_id))
        .order_by(c.target_id, c.id.desc())
    )
    return {
        target_id: (cast("Status", status), stale, forecast)
        for target_id, status, stale, forecast in rows
    }


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


def _change_row(change: TargetStatusChange) -> dict[str, Any]:
    columns = TargetStatusChangeRow.__table__.columns
    return {
        c.name: getattr(change, c.name)
        for c in columns
        if c.name not in ("id", "published_at")
    }


def write_progress(
    conn: Connection, progress: Sequence[Progress], now: datetime
) -> None:
    """Upsert the progress rows (one per target, its newest version)."""
    if not progress:
        return
    stmt = insert(TargetProgressRow)
    keys = _progress_row(progress[0], now).keys() - {"target_id"}
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["target_id"],
            set_={k: stmt.excluded[k] for k in keys},
        ),
        [_progress_row(p, now) for p in progress],
    )


def log_status_changes(
    conn: Connection, changes: Sequence[TargetStatusChange]
) -> list[TargetStatusChange]:
    """Append changes to the log (the outbox); return them with their ids."""
    if not changes:
        return []
    ids = conn.execute(
        insert(TargetStatusChangeRow).returning(TargetStatusChangeRow.id),
        [_change_row(c) for c in changes],
    ).scalars()
    return [replace(c, id=i) for c, i in zip(changes, ids, strict=True)]


def write_trajectories(
    conn: Connection, paths: Mapping[str, tuple[int, Sequence[tuple[int, float]]]]
) -> None:
    """Replace the path points of these targets: id -> (version, points)."""
    if not paths:
        return
    conn.execute(
        delete(TargetTrajectoryRow).where(TargetTrajectoryRow.target_id.in_(paths))
    )
    rows = [
        {"target_id": target_id, "version": version, "year": year, "path_value": v}
        for target_id, (version, points) in paths.items()
        for year, v in points
    ]
    if rows:
        conn.execute(insert(TargetTrajectoryRow), rows)


def write_series(
    conn: Connection, series: Sequence[tuple[Target, Sequence[YearValue]]]
) -> None:
    """Make `target_series` hold exactly these targets' measured values."""
    conn.execute(delete(TargetSeriesRow))
    rows = [
        {
            "target_id": target.target_id,
            "year": point.year,
            "version": target.version,
            "indicator": target.indicator,
            "scope": target.scope,
            "value": point.value,
            "reported": point.coverage.reported,
            "expected": point.coverage.expected,
        }
        for target, points in series
        for point in points
    ]
    if rows:
        conn.execute(insert(TargetSeriesRow), rows)


def progress_rows(conn: Connection) -> list[dict[str, Any]]:
    """The stored progress of every target, in the `progress --json` shape."""
    rows = conn.execute(select(TargetProgressRow).order_by(TargetProgressRow.target_id))
    result = []
    for r in rows.mappings():
        row = {k: v for k, v in r.items() if not k.startswith("coverage_")}
        row["coverage"] = {
            "year": r["coverage_year"],
            "reported": r["coverage_reported"],
            "expected": r["coverage_expected"],
        }
        row["as_of"] = r["as_of"].isoformat()
        row.pop("computed_at", None)
        result.append(row)
    return result
