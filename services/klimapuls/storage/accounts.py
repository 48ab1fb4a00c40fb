"""CO2 account figures and emission series (owner: the co2 service).

Figures are keyed by event id and judged by `klimapuls.core.identity`;
restatements (a newer vintage) add rows, never overwrite. `emission_series`
is derived: E(t) per scope as `klimapuls.core.accounts` computes it, for the
boards; target progress recomputes E(t) itself from the figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Connection, delete, func, text
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.accounts import YearValue
from klimapuls.core.identity import Identity, Judgement, stored_identity
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


_SLOT_ROWS = text(
    """
    SELECT a.* FROM co2_account a
    JOIN unnest(CAST(:codes AS text[]), CAST(:years AS int[]),
        CAST(:sectors AS text[]), CAST(:subsectors AS text[]),
        CAST(:vintages AS date[])) AS k(code, year, sector, subsector, vintage)
    ON a.municipality_code = k.code AND a.year = k.year
        AND a.sector = k.sector AND coalesce(a.subsector, '') = k.subsector
        AND a.vintage = k.vintage
    """
)


def _rivals(conn: Connection, events: Sequence[dict[str, Any]]) -> list[Identity]:
    """Every stored figure in the slots (subsector and vintage) of `events`."""
    slots = sorted({Co2Account.from_event(dict(e)).slot for e in events})
    rows = conn.execute(
        _SLOT_ROWS,
        {
            "codes": [s[0] for s in slots],
            "years": [s[1] for s in slots],
            "sectors": [s[2] for s in slots],
            "subsectors": [s[3] for s in slots],
            "vintages": [s[4] for s in slots],
        },
    ).mappings()
    return [
        stored_identity("co2_account", r["event_id"], r["payload_sha256"], _account(r))
        for r in rows
    ]


def store_co2_accounts(
    conn: Connection, events: Sequence[dict[str, Any]]
) -> list[Judgement]:
    """Judge and insert account events; one judgement per event, in order."""
    return insert_new_events(conn, "co2_account", Co2AccountRow, events, _row, _rivals)


def _account(r: Mapping[Any, Any]) -> Co2Account:
    return Co2Account(
        event_id=r["event_id"],
        municipality_code=r["municipality_code"],
        year=r["year"],
        sector=r["sector"],
        subsector=r["subsector"],
        tonnes_co2e=float(r["tonnes_co2e"]),
        vintage=r["vintage"],
        source=r["source"],
        reported_at=r["reported_at"],
        producer=r["producer"],
    )


# Positional, in `Co2Account`'s field order (the column list is made from
# its fields), with the figure as float8 (correctly rounded, as `float()` of
# the decimal is): every stored figure is read on each recomputation, so the
# rows are fetched at once and each becomes its `Co2Account` in one call.
_ALL_ACCOUNTS = text(
    "SELECT "
    + ", ".join(
        "tonnes_co2e::float8" if f.name == "tonnes_co2e" else f.name
        for f in fields(Co2Account)
    )
    + " FROM co2_account"
)


def co2_accounts(conn: Connection) -> list[Co2Account]:
    """Every stored figure, every vintage (the core picks the newest)."""
    return [Co2Account(*row) for row in conn.execute(_ALL_ACCOUNTS).all()]


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
