"""The restatement log (owner: the targets service).

`restatement` lists every figure a later report changed, as
`klimapuls.core.restatements.all_restatements` finds them in the stored
facts; the targets service rewrites it on every recomputation (it loads
those facts anyway), and `board.restatements` shows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.restatements import Restatement
from klimapuls.storage.models_restatements import RestatementRow

__all__ = ["write_restatements"]


def _row(r: Restatement) -> dict[str, Any]:
    return {
        "family": r.family,
        "restated_at": r.restated_at,
        "scope": r.scope,
        "period": r.period,
        "sector": r.sector,
        "detail": r.detail,
        "producer": r.producer,
        "municipality_code": r.municipality_code,
        "year": r.year,
        "unit": r.unit,
        "old_value": r.old_value,
        "new_value": r.new_value,
        "change_pct": r.change_pct,
        "old_vintage": r.old_vintage,
        "new_vintage": r.new_vintage,
        "regional": r.regional,
    }


def write_restatements(conn: Connection, restatements: Iterable[Restatement]) -> int:
    """Make `restatement` hold exactly `restatements`; returns how many.

    Rewritten whole inside the caller's transaction: readers see the old
    rows until it commits, never a mix.
    """
    rows = [_row(r) for r in restatements]
    conn.execute(delete(RestatementRow))
    if rows:
        conn.execute(insert(RestatementRow).on_conflict_do_nothing(), rows)
    return len(rows)
