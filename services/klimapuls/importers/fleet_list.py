"""The `fleet-list` layout (`docs/import-fleet-list.md`).

One row per bus with its propulsion -> `fleet_status.v1` per operator,
contract/garage and date (counts by propulsion, and the buses' ids in
`bus_ids`, so a bus another file lists under another garage is refused).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from klimapuls.core.initiatives import REGION_TOVHOLDER, initiative_id
from klimapuls.importers.table import (
    ImportedEvent,
    ImportIssue,
    ImportOptions,
    _checked,
    _Column,
    _Columns,
    _date,
    _lookup,
    _municipality,
    _municipality_table,
    _norm,
    _Row,
    _RowError,
)

# -- fleet-list ------------------------------------------------------------

_PROPULSION = {
    _norm(k): v
    for k, v in {
        "diesel": "diesel",
        "hvo": "hvo",
        "biodiesel": "hvo",
        "hvo100": "hvo",
        "biogas": "biogas",
        "gas": "biogas",
        "el": "battery_electric",
        "elbus": "battery_electric",
        "batteri": "battery_electric",
        "batterielektrisk": "battery_electric",
        "battery_electric": "battery_electric",
        "electric": "battery_electric",
        "brint": "hydrogen",
        "hydrogen": "hydrogen",
        "hybrid": "hybrid",
        "dieselhybrid": "hybrid",
    }.items()
}

_FLEET_COLUMNS = (
    _Column("vognnummer", ("vogn", "bus", "bus_id", "bus id")),
    _Column("operatør", ("operatoer", "operator", "trafikselskab")),
    _Column("kontrakt", ("contract", "udbud"), required=False),
    _Column("garage", ("depot",), required=False),
    _Column("drivmiddel", ("propulsion", "drivlinje", "brændstof")),
    _Column("kommune", ("kommunekode", "municipality", "municipality_code"), False),
    _Column("dato", ("date", "opgjort"), required=False),
)


def _operator(text: str) -> str:
    if _norm(text) == _norm(REGION_TOVHOLDER):
        return "region-hovedstaden"
    code = _municipality_table().get(_norm(text))
    if code is not None:
        return code
    # Operating companies become slugs, spelt like initiative ids ("Movia").
    return initiative_id(text) if len(text.strip()) > 1 else text.lower()


@dataclass
class _FleetGroup:
    rows: list[int] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    buses: Counter[str] = field(default_factory=Counter)
    towns: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    ids: list[str] = field(default_factory=list)


def _fleet(
    columns: _Columns, rows: Iterator[_Row], options: ImportOptions, kind: str
) -> Iterator[ImportedEvent]:
    groups: dict[tuple[str, str, str, str], _FleetGroup] = {}
    # A bus runs from one contract/garage on a date: listed under two it
    # would count twice in the operator's and the region's fleet.
    placed: dict[tuple[str, str, str], tuple[int, str]] = {}
    for row in rows:
        try:
            row.check()
            bus = columns.need(row, "vognnummer")
            operator = _operator(columns.need(row, "operatør"))
            contract = columns.get(row, "kontrakt")
            garage = columns.get(row, "garage")
            if not contract and not garage:
                raise _RowError(
                    columns.header("kontrakt"), "give a contract or a garage"
                )
            day_text = columns.get(row, "dato")
            day = (
                _date(day_text, columns.header("dato"))
                if day_text
                else options.list_date
            )
            if day is None:
                raise _RowError(
                    columns.header("dato"), "is empty, and no --date was given"
                )
            propulsion = _lookup(
                columns.need(row, "drivmiddel"),
                _PROPULSION,
                columns.header("drivmiddel"),
                "propulsion",
            )
            town = columns.get(row, "kommune")
            code = _municipality(town, columns.header("kommune")) if town else None
            key = (operator, contract, garage, day.isoformat())
            group = groups.get(key) or _FleetGroup()
            if bus in group.seen:
                raise _RowError(
                    columns.header("vognnummer"),
                    f"bus {bus!r} is listed twice for this operator, "
                    "contract/garage and date",
                )
            unit = "/".join(part for part in (contract, garage) if part)
            elsewhere = placed.get((operator, day.isoformat(), bus))
            if elsewhere is not None:
                first_row, first_unit = elsewhere
                raise _RowError(
                    columns.header("vognnummer"),
                    f"bus {bus!r} is already listed under {first_unit!r} on "
                    f"{day.isoformat()} (row {first_row}); a bus belongs to one "
                    "contract/garage on a date, or it counts twice",
                )
        except _RowError as exc:
            issue = ImportIssue(row.number, exc.column, exc.reason)
            yield ImportedEvent(kind, (row.number,), row.raw, None, (issue,))
            continue
        group = groups.setdefault(key, group)
        group.seen.add(bus)
        group.ids.append(bus)
        placed[(operator, day.isoformat(), bus)] = (row.number, unit)
        group.rows.append(row.number)
        group.raw.append(row.raw)
        group.buses[propulsion] += 1
        if code:
            group.towns[code] += 1
    fields = {
        "operator": columns.header("operatør"),
        "contract": columns.header("kontrakt"),
        "garage": columns.header("garage"),
        "date": columns.header("dato") if "dato" in columns.found else "--date",
        "buses": columns.header("drivmiddel"),
        "municipality_code": columns.header("kommune"),
        "bus_ids": columns.header("vognnummer"),
    }
    for (operator, contract, garage, iso_day), group in groups.items():
        event: dict[str, Any] = {
            "operator": operator,
            "date": iso_day,
            "buses": dict(sorted(group.buses.items())),
            "bus_ids": group.ids,
        }
        if contract:
            event["contract"] = contract
        if garage:
            event["garage"] = garage
        if group.towns:
            # The municipality the contract mainly serves: most of its buses.
            event["municipality_code"] = group.towns.most_common(1)[0][0]
        yield _checked(kind, tuple(group.rows), "\n".join(group.raw), event, fields)
