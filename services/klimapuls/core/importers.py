"""CSV files municipalities hold -> Klimapuls events (pure; no Kafka here).

Four layouts, each documented in `docs/import-<kind>.md`:

- `co2-account`: an Energi- og CO2-regnskabet export, one row per
  municipality, year, sector (and subsector) -> `co2_account.v1`;
- `traffic-count`: site, time, mode, count (+ municipality) ->
  `mobility_count.v1`;
- `fleet-list`: one row per bus with its propulsion -> `fleet_status.v1`
  per operator, contract/garage and date (counts by propulsion);
- `vip-status`: the VIP status table -> `initiative_status.v1` per
  initiative and round; empty cells are skipped (missing is derived).

Files may use `,` or `;` between cells (Danish spreadsheets export `;`);
headers match case-insensitively, in Danish or English. A number with a
decimal comma is read the Danish way (`1.234,5` = 1234.5). Every problem is
an `ImportIssue` naming the file row (the header is row 1) and the column;
the converted events are validated against their schema here too, and a
schema issue is reported at the row and column the field came from.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.initiatives import (
    PROGRAMME_INFRASTRUCTURE,
    REGION_TOVHOLDER,
    initiative_id,
)
from klimapuls.core.reference import municipalities
from klimapuls.core.validation import validate_event

__all__ = [
    "IMPORT_KINDS",
    "ImportIssue",
    "ImportOptions",
    "ImportedEvent",
    "convert",
]

#: Import layouts and the event family each produces.
IMPORT_KINDS: dict[str, str] = {
    "co2-account": "co2_account",
    "traffic-count": "mobility_count",
    "fleet-list": "fleet_status",
    "vip-status": "initiative_status",
}

#: Local time of naive timestamps in traffic counts.
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
CO2_SOURCE = "Energi- og CO2-regnskabet"

Envelope = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ImportIssue:
    """A problem in an input file: the row (header = 1), the column, why."""

    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.reason}"


@dataclass(frozen=True)
class ImportedEvent:
    """One event made from one or more rows, or the issues that stopped it."""

    kind: str
    rows: tuple[int, ...]
    raw: str
    event: dict[str, Any] | None
    issues: tuple[ImportIssue, ...] = ()
    #: Event field -> the column it came from, to place schema issues.
    columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def row(self) -> int:
        """The first source row."""
        return self.rows[0]

    def error(self) -> EventValidationError:
        """The issues as a validation error whose fields are the columns."""
        return EventValidationError(
            [FieldIssue(i.column, f"row {i.row}: {i.reason}") for i in self.issues]
        )


@dataclass(frozen=True)
class ImportOptions:
    """Values a file may lack, given on the command line instead."""

    vintage: date | None = None
    list_date: date | None = None
    sites: Mapping[str, str] = field(default_factory=dict)
    today: date | None = None


class _RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


# -- reading ---------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    number: int
    cells: dict[str, str]
    raw: str
    #: Name of the first non-empty cell beyond the header, if any.
    extra: str | None = None

    def check(self) -> None:
        """Refuse a row with more cells than the header: data would be lost."""
        if self.extra is not None:
            raise _RowError(
                self.extra,
                "a cell beyond the last header column (a decimal comma in a "
                "comma-separated file? quote the number or use ';')",
            )


def _norm(name: str) -> str:
    return re.sub(r"[\s_.-]+", " ", name.strip().lower())


def _read(text: str) -> tuple[list[str], Iterator[_Row]]:
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], iter(())

    def rows() -> Iterator[_Row]:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            padded = cells + [""] * (len(header) - len(cells))
            beyond = [i for i in range(len(header), len(cells)) if cells[i].strip()]
            yield _Row(
                reader.line_num,
                {h: padded[i].strip() for i, h in enumerate(header) if h},
                delimiter.join(cells),
                f"column {beyond[0] + 1}" if beyond else None,
            )

    return header, rows()


@dataclass(frozen=True)
class _Column:
    name: str
    aliases: tuple[str, ...]
    required: bool = True


class _Columns:
    """Finds each wanted column in a header, by its name or an alias."""

    def __init__(self, header: Sequence[str], wanted: Sequence[_Column]) -> None:
        by_norm = {_norm(h): h for h in header if h}
        self.found: dict[str, str] = {}
        self.issues: list[ImportIssue] = []
        for column in wanted:
            for alias in (column.name, *column.aliases):
                if _norm(alias) in by_norm:
                    self.found[column.name] = by_norm[_norm(alias)]
                    break
            else:
                if column.required:
                    also = ", ".join(column.aliases)
                    self.issues.append(
                        ImportIssue(
                            1,
                            column.name,
                            f"column is missing (also accepted: {also})",
                        )
                    )

    def header(self, name: str) -> str:
        """The file's header for a wanted column."""
        return self.found.get(name, name)

    def get(self, row: _Row, name: str) -> str:
        """The cell of a column ('' when the column is absent)."""
        header = self.found.get(name)
        return row.cells.get(header, "") if header else ""

    def need(self, row: _Row, name: str) -> str:
        """The cell of a column; an empty one is an error."""
        value = self.get(row, name)
        if not value:
            raise _RowError(self.header(name), "is empty")
        return value


# -- cell parsers ----------------------------------------------------------


#: `398.120`: Danish thousands separators without a decimal part.
_THOUSANDS = re.compile(r"-?\d{1,3}(\.\d{3})+")


def _number(text: str, column: str) -> float:
    cleaned = text.replace(" ", "").replace("\u00a0", "")
    if "," in cleaned:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    elif _THOUSANDS.fullmatch(cleaned):
        cleaned = cleaned.replace(".", "")
    try:
        value = float(cleaned)
    except ValueError:
        raise _RowError(column, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise _RowError(column, f"{text!r} is not a finite number")
    return value


def _integer(text: str, column: str) -> int:
    value = _number(text, column)
    if value != int(value):
        raise _RowError(column, f"{text!r} is not a whole number")
    return int(value)


def _date(text: str, column: str) -> date:
    for pattern in ("%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise _RowError(column, f"{text!r} is not a date (YYYY-MM-DD or DD-MM-YYYY)")


def _timestamp(text: str, column: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise _RowError(
            column, f"{text!r} is not a time (e.g. 2025-06-02 07:00)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=COPENHAGEN)


def _lookup(text: str, table: Mapping[str, str], column: str, what: str) -> str:
    value = table.get(_norm(text))
    if value is None:
        known = ", ".join(sorted({v for v in table.values()}))
        raise _RowError(column, f"{text!r} is not a known {what} ({known})")
    return value


@cache
def _municipality_table() -> dict[str, str]:
    table = {}
    for m in municipalities():
        table[_norm(m.code)] = m.code
        table[_norm(m.name)] = m.code
        table[_norm(f"{m.name} kommune")] = m.code
    table[_norm("Københavns Kommune")] = "101"
    return table


def _municipality(text: str, column: str) -> str:
    table = _municipality_table()
    code = table.get(_norm(text))
    if code is None and text.isdigit():
        code = table.get(str(int(text)))  # "0101" as some exports write it
    if code is None:
        raise _RowError(
            column,
            f"{text!r} is not a municipality of Region Hovedstaden (name or code)",
        )
    return code


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


# -- traffic-count ---------------------------------------------------------

_MODES = {
    _norm(k): v
    for k, v in {
        "bil": "car",
        "biler": "car",
        "car": "car",
        "cykel": "bike",
        "cykler": "bike",
        "bike": "bike",
        "bicycle": "bike",
        "bus": "bus",
        "tog": "train",
        "train": "train",
        "s-tog": "train",
        "metro": "metro",
        "gang": "walk",
        "fodgænger": "walk",
        "fodgængere": "walk",
        "walk": "walk",
    }.items()
}
_SITE_KINDS = {"car": "road_counter", "bike": "bike_counter"}

_TRAFFIC_COLUMNS = (
    _Column("site", ("tællested", "taellested", "site_id", "station")),
    _Column("kommune", ("kommunekode", "municipality", "municipality_code"), False),
    _Column("time", ("tid", "tidspunkt", "interval_start", "start")),
    _Column("mode", ("transportmiddel", "trafikart", "type")),
    _Column("count", ("antal", "passager", "passages")),
    _Column("direction", ("retning",), required=False),
    _Column("minutes", ("minutter", "interval_minutes", "varighed"), False),
    _Column("revision", ("rettelse",), required=False),
)


def _traffic_row(
    columns: _Columns, row: _Row, options: ImportOptions
) -> tuple[dict[str, Any], dict[str, str]]:
    site = columns.need(row, "site")
    town = columns.get(row, "kommune")
    if town:
        code = _municipality(town, columns.header("kommune"))
    elif site in options.sites:
        code = options.sites[site]
    else:
        raise _RowError(
            columns.header("kommune"),
            f"is empty, and site {site!r} is not in the --sites file",
        )
    start = _timestamp(columns.need(row, "time"), columns.header("time"))
    minutes_text = columns.get(row, "minutes")
    minutes = _integer(minutes_text, columns.header("minutes")) if minutes_text else 60
    if minutes <= 0:
        raise _RowError(columns.header("minutes"), "must be more than 0")
    mode = _lookup(
        columns.need(row, "mode"), _MODES, columns.header("mode"), "transport mode"
    )
    event: dict[str, Any] = {
        "site_id": site,
        "municipality_code": code,
        "mode": mode,
        "direction": columns.get(row, "direction") or "both",
        "interval_start": start.isoformat(),
        "interval_end": (start + timedelta(minutes=minutes)).isoformat(),
        "count": _integer(columns.need(row, "count"), columns.header("count")),
    }
    if mode in _SITE_KINDS:
        event["site_kind"] = _SITE_KINDS[mode]
    revision = columns.get(row, "revision")
    if revision:
        event["revision"] = _integer(revision, columns.header("revision"))
    fields = {
        "site_id": columns.header("site"),
        "municipality_code": columns.header("kommune"),
        "mode": columns.header("mode"),
        "direction": columns.header("direction"),
        "interval_start": columns.header("time"),
        "interval_end": columns.header("minutes"),
        "count": columns.header("count"),
        "revision": columns.header("revision"),
    }
    return event, fields


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


def _fleet(
    columns: _Columns, rows: Iterator[_Row], options: ImportOptions, kind: str
) -> Iterator[ImportedEvent]:
    groups: dict[tuple[str, str, str, str], _FleetGroup] = {}
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
            group = groups.setdefault(
                (operator, contract, garage, day.isoformat()), _FleetGroup()
            )
            if bus in group.seen:
                raise _RowError(
                    columns.header("vognnummer"),
                    f"bus {bus!r} is listed twice for this operator, "
                    "contract/garage and date",
                )
        except _RowError as exc:
            issue = ImportIssue(row.number, exc.column, exc.reason)
            yield ImportedEvent(kind, (row.number,), row.raw, None, (issue,))
            continue
        group.seen.add(bus)
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
    }
    for (operator, contract, garage, iso_day), group in groups.items():
        event: dict[str, Any] = {
            "operator": operator,
            "date": iso_day,
            "buses": dict(sorted(group.buses.items())),
        }
        if contract:
            event["contract"] = contract
        if garage:
            event["garage"] = garage
        if group.towns:
            # The municipality the contract mainly serves: most of its buses.
            event["municipality_code"] = group.towns.most_common(1)[0][0]
        yield _checked(kind, tuple(group.rows), "\n".join(group.raw), event, fields)


# -- vip-status ------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "januar", "january"),
            ("feb", "februar", "february"),
            ("mar", "marts", "march"),
            ("apr", "april"),
            ("maj", "may"),
            ("jun", "juni", "june"),
            ("jul", "juli", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("okt", "oct", "oktober", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_STATUS = {
    _norm(k): v
    for k, v in {
        "modtaget": "received",
        "received": "received",
        "ja": "confirmed",
        "bekræftet": "confirmed",
        "confirmed": "confirmed",
        "på sporet": "on_track",
        "i gang": "on_track",
        "on track": "on_track",
        "forsinket": "delayed",
        "delayed": "delayed",
        "stoppet": "stopped",
        "stopped": "stopped",
        "afsluttet": "completed",
        "gennemført": "completed",
        "completed": "completed",
        "ikke startet": "not_started",
        "not started": "not_started",
    }.items()
}
_MISSING_CELLS = {"", "-", "mangler", "missing"}

_VIP_COLUMNS = (
    _Column("project", ("projekt", "initiativ", "initiative")),
    _Column("group", ("gruppe",), required=False),
    _Column("tovholdere", ("tovholder",)),
    _Column("estimate_dkk_m", ("overslag", "overslag mio kr", "estimate"), False),
    _Column("note", ("bemærkning", "note"), required=False),
    _Column("effective_date", ("tovholder fra", "tovholdere fra"), required=False),
)


def _round_of(header: str) -> str | None:
    """`status_oct_2022` / `status okt 2022` / `status_2022-10` -> `2022-10`."""
    name = _norm(header)
    if not name.startswith("status "):
        return None
    rest = name.removeprefix("status ").split()
    if len(rest) == 2 and rest[0] in _MONTHS and rest[1].isdigit():
        return f"{int(rest[1]):04d}-{_MONTHS[rest[0]]:02d}"
    if len(rest) == 2 and rest[0].isdigit() and rest[1].isdigit():
        return f"{int(rest[0]):04d}-{int(rest[1]):02d}"
    return None


def _vip(
    header: Sequence[str],
    columns: _Columns,
    rows: Iterator[_Row],
    kind: str,
) -> Iterator[ImportedEvent]:
    rounds = {h: r for h in header if (r := _round_of(h)) is not None}
    for row in rows:
        try:
            row.check()
            name = columns.need(row, "project")
            try:
                ident = initiative_id(name)
            except ValueError as exc:
                raise _RowError(columns.header("project"), str(exc)) from None
            tovholdere = [
                t.strip()
                for t in columns.get(row, "tovholdere").split(";")
                if t.strip()
            ]
            estimate_text = columns.get(row, "estimate_dkk_m")
            estimate = (
                _number(estimate_text, columns.header("estimate_dkk_m"))
                if estimate_text
                else None
            )
            effective_text = columns.get(row, "effective_date")
            effective = (
                _date(effective_text, columns.header("effective_date"))
                if effective_text
                else None
            )
        except _RowError as exc:
            issue = ImportIssue(row.number, exc.column, exc.reason)
            yield ImportedEvent(kind, (row.number,), row.raw, None, (issue,))
            continue
        for column, round_ in rounds.items():
            cell = row.cells.get(column, "")
            if _norm(cell) in _MISSING_CELLS:
                continue  # a missing report is derived, never sent
            try:
                status = _lookup(cell, _STATUS, column, "status")
            except _RowError as exc:
                issue = ImportIssue(row.number, exc.column, exc.reason)
                yield ImportedEvent(kind, (row.number,), row.raw, None, (issue,))
                continue
            event: dict[str, Any] = {
                "initiative_id": ident,
                "initiative_name": name,
                "programme": PROGRAMME_INFRASTRUCTURE,
                "round": round_,
                "status": status,
                "tovholdere": tovholdere,
            }
            group = columns.get(row, "group")
            if group:
                event["group"] = group
            if estimate is not None:
                event["estimate_dkk_m"] = estimate
            note = columns.get(row, "note")
            if note:
                event["note"] = note
            if effective is not None:
                event["effective_date"] = effective.isoformat()
            fields = {
                "initiative_id": columns.header("project"),
                "initiative_name": columns.header("project"),
                "group": columns.header("group"),
                "round": column,
                "status": column,
                "tovholdere": columns.header("tovholdere"),
                "estimate_dkk_m": columns.header("estimate_dkk_m"),
                "note": columns.header("note"),
                "effective_date": columns.header("effective_date"),
            }
            yield _checked(kind, (row.number,), row.raw, event, fields)


# -- validation and the entry point ----------------------------------------


def _checked(
    kind: str,
    rows: tuple[int, ...],
    raw: str,
    event: dict[str, Any],
    fields: Mapping[str, str],
) -> ImportedEvent:
    """Mark an event for validation; `fields` maps event fields to columns."""
    return ImportedEvent(kind, rows, raw, event, (), dict(fields))


def _validated(item: ImportedEvent, envelope: Envelope) -> ImportedEvent:
    if item.event is None:
        return item
    event = envelope(item.kind, item.event)
    try:
        validate_event(item.kind, event)
    except EventValidationError as exc:
        issues = tuple(
            ImportIssue(
                item.row,
                item.columns.get(i.field.split(".")[0], i.field),
                i.reason,
            )
            for i in exc.issues
        )
        return ImportedEvent(item.kind, item.rows, item.raw, None, issues)
    return ImportedEvent(item.kind, item.rows, item.raw, event)


def _per_row(
    kind: str,
    columns: _Columns,
    rows: Iterator[_Row],
    options: ImportOptions,
    convert_row: Callable[
        [_Columns, _Row, ImportOptions], tuple[dict[str, Any], dict[str, str]]
    ],
) -> Iterator[ImportedEvent]:
    # Two rows for one fact (e.g. "Energi" and "El og varme" both mapping to
    # energy) would silently leave one of them out of every sum: refuse the
    # second, naming the row it repeats.
    first_row: dict[tuple[Any, ...], int] = {}
    for row in rows:
        try:
            row.check()
            event, fields = convert_row(columns, row, options)
            key = tuple(event.get(name) for name in _FACT_KEYS[kind])
            if key in first_row:
                raise _RowError(
                    "$",
                    f"repeats the {', '.join(_FACT_KEYS[kind])} of row "
                    f"{first_row[key]}; give one row per fact",
                )
            first_row[key] = row.number
        except _RowError as exc:
            issue = ImportIssue(row.number, exc.column, exc.reason)
            yield ImportedEvent(kind, (row.number,), row.raw, None, (issue,))
            continue
        yield _checked(kind, (row.number,), row.raw, event, fields)


#: What makes two rows the same fact, per event family.
_FACT_KEYS: dict[str, tuple[str, ...]] = {
    "co2_account": ("municipality_code", "year", "sector", "subsector", "vintage"),
    "mobility_count": ("site_id", "mode", "direction", "interval_start"),
}


def convert(
    import_kind: str,
    text: str,
    envelope: Envelope,
    options: ImportOptions | None = None,
) -> Iterator[ImportedEvent]:
    """Convert a file's text; yields each event (validated) or its issues.

    `envelope(kind, event)` fills `schema`, `event_id`, `producer` and
    `reported_at` (the producer's `complete_envelope`). A header problem (a
    required column missing) is one issue at row 1 and nothing else.
    """
    if import_kind not in IMPORT_KINDS:
        raise ValueError(
            f"unknown import kind {import_kind!r}; one of {', '.join(IMPORT_KINDS)}"
        )
    options = options or ImportOptions()
    kind = IMPORT_KINDS[import_kind]
    header, rows = _read(text)
    wanted = {
        "co2-account": _CO2_COLUMNS,
        "traffic-count": _TRAFFIC_COLUMNS,
        "fleet-list": _FLEET_COLUMNS,
        "vip-status": _VIP_COLUMNS,
    }[import_kind]
    columns = _Columns(header, wanted)
    if import_kind == "vip-status" and not any(_round_of(h) for h in header):
        columns.issues.append(
            ImportIssue(
                1, "status_<month>_<year>", "no status column (e.g. status_oct_2023)"
            )
        )
    if columns.issues:
        yield ImportedEvent(kind, (1,), ",".join(header), None, tuple(columns.issues))
        return
    items: Iterator[ImportedEvent]
    if import_kind == "co2-account":
        items = _per_row(kind, columns, rows, options, _co2_row)
    elif import_kind == "traffic-count":
        items = _per_row(kind, columns, rows, options, _traffic_row)
    elif import_kind == "fleet-list":
        items = _fleet(columns, rows, options, kind)
    else:
        items = _vip(header, columns, rows, kind)
    for item in items:
        yield _validated(item, envelope)
