"""CO2 account figures and emission series (owner: the co2 service).

Figures are keyed by event id and judged by `klimapuls.core.identity`;
restatements (a newer vintage) add rows, never overwrite. `emission_series`
is derived: E(t) per scope as `klimapuls.core.accounts` computes it, for the
boards; target progress recomputes E(t) itself from the figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.accounts import YearValue
from klimapuls.core.identity import Judgement
from klimapuls.core.model import Co2Account
from klimapuls.storage.events import exact, insert_new_events
from klimapuls.storage.models import Co2AccountRow, EmissionSeriesRow

__all__ = [
    "co2_accounts",
    "lock_emission_series",
    "store_co2_accounts",
    "write_emission_series",
]


def _row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "municipality_code": e["municipality_code"],
        "year": e["year"],
        "sector": e["sector"],
        "subsector": e.get("subsector"),
        "tonnes_co2e": exact(e["tonnes_co2e"]),
        "vintage": e["vintage"],
        "source": e["source"],
        "producer": e["producer"],
        "reported_at": e["reported_at"],
    }


def store_co2_accounts(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> list[Judgement]:
    """Judge and insert account events; one judgement per event, in order."""
    return insert_new_events(conn, "co2_account", Co2AccountRow, events, _row)


def co2_accounts(conn: Connection) -> list[Co2Account]:
    """Every stored figure, every vintage (the core picks the newest)."""
    a = Co2AccountRow
    rows = conn.execute(
        select(
            a.event_id,
            a.municipality_code,
            a.year,
            a.sector,
            a.subsector,
            a.tonnes_co2e,
            a.vintage,
            a.source,
            a.reported_at,
        )
    )
    return [
        Co2Account(
            event_id=r.event_id,
            municipality_code=r.municipality_code,
            year=r.year,
            sector=r.sector,
            subsector=r.subsector,
            tonnes_co2e=float(r.tonnes_co2e),
            vintage=r.vintage,
            source=r.source,
            reported_at=r.reported_at,
        )
        for r in rows
    ]


def lock_emission_series(conn: Connection) -> None:
    """Let one worker at a time rewrite the series (until the commit)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.co2.series'))"))


def write_emission_series(
    conn: Connection, scope: str, series: Iterable[YearValue]
) -> None:
    """Make E(t) of `scope` equal `series`; unchanged rows are left alone."""
    points = list(series)
    conn.execute(
        delete(EmissionSeriesRow).where(
            (EmissionSeriesRow.scope == scope)
            & EmissionSeriesRow.year.not_in([p.year for p in points])
        )
    )
    if not points:
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
                | EmissionSeriesRow.expected.is_distinct_from(stmt.excluded.expected)
            ),
        ),
        [
            {
                "scope": scope,
                "year": p.year,
                "tonnes_co2e": p.value,
                "reported": p.coverage.reported,
                "expected": p.coverage.expected,
                "complete": p.counted,
            }
            for p in points
        ],
    )
