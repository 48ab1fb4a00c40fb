"""The `co2-account` layout (`docs/import-co2-account.md`).

An Energi- og CO2-regnskabet export, one row per municipality, year, sector
(and subsector) -> `co2_account.v1`.
"""

from __future__ import annotations

from typing import Any

from klimapuls.importers.table import (
    ImportOptions,
    _Column,
    _Columns,
    _date,
    _integer,
    _lookup,
    _municipality,
    _norm,
    _number,
    _Row,
    _RowError,
)

__all__ = [
    "CO2_SOURCE",
]

CO2_SOURCE = "Energi- og CO2-regnskabet"

# -- co2-account -----------------------------------------------------------

_SECTORS = {
    _norm(k): v
    for k, v in {
        "energi": "energy",
        "energy": "energy",
        "el og varme": "energy",
        "transport": "transport",
        "landbrug": "agriculture",
        "agriculture": "agriculture",
        "affald": "waste",
        "affald og spildevand": "waste",
        "waste": "waste",
        "industri": "industry",
        "industrielle processer": "industry",
        "kemiske processer": "industry",
        "industry": "industry",
        "andet": "other",
        "øvrige": "other",
        "other": "other",
    }.items()
}

_CO2_COLUMNS = (
    _Column("kommune", ("kommunekode", "municipality", "municipality_code")),
    _Column("år", ("aar", "year")),
    _Column("sektor", ("sector",)),
    _Column("delsektor", ("undersektor", "subsector"), required=False),
    _Column(
        "ton co2e",
        ("ton_co2e", "tonnes_co2e", "udledning (ton co2e)", "co2e (ton)"),
    ),
    _Column("opgjort", ("vintage", "opgørelsesdato", "opgjort dato"), required=False),
)


def _co2_row(
    columns: _Columns, row: _Row, options: ImportOptions
) -> tuple[dict[str, Any], dict[str, str]]:
    vintage_text = columns.get(row, "opgjort")
    vintage = (
        _date(vintage_text, columns.header("opgjort"))
        if vintage_text
        else options.vintage
    )
    if vintage is None:
        raise _RowError(
            columns.header("opgjort"),
            "is empty, and no --vintage was given (the date the figures were computed)",
        )
    year_col = columns.header("år")
    event: dict[str, Any] = {
        "municipality_code": _municipality(
            columns.need(row, "kommune"), columns.header("kommune")
        ),
        "year": _integer(columns.need(row, "år"), year_col),
        "sector": _lookup(
            columns.need(row, "sektor"), _SECTORS, columns.header("sektor"), "sector"
        ),
        "tonnes_co2e": _number(
            columns.need(row, "ton co2e"), columns.header("ton co2e")
        ),
        "vintage": vintage.isoformat(),
        "source": CO2_SOURCE,
    }
    subsector = columns.get(row, "delsektor")
    if subsector:
        event["subsector"] = subsector
    fields = {
        "municipality_code": columns.header("kommune"),
        "year": year_col,
        "sector": columns.header("sektor"),
        "subsector": columns.header("delsektor"),
        "tonnes_co2e": columns.header("ton co2e"),
        "vintage": columns.header("opgjort") if vintage_text else "--vintage",
    }
    return event, fields
