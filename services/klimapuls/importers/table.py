"""What every import layout shares: reading the CSV, columns, cells, checks.

Files may use `,` or `;` between cells; headers match case-insensitively, by
name or alias; numbers, dates, timestamps and municipalities are parsed the
Danish way. `_per_row` drives a layout that makes one event per row, and
`_validated` checks each event against its schema, reporting an issue at the
row and column the field came from.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from klimapuls.core.errors import EventValidationError, FieldIssue, KlimapulsError
from klimapuls.core.reference import municipalities
from klimapuls.core.validation import validate_event

__all__ = [
    "COPENHAGEN",
    "DecodedText",
    "Envelope",
    "FileEncodingError",
    "ImportIssue",
    "ImportOptions",
    "ImportedEvent",
    "TextLine",
    "decode_table",
    "delimiter_of",
    "text_lines",
]

#: Local time of naive timestamps in traffic counts.
COPENHAGEN = ZoneInfo("Europe/Copenhagen")

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


class FileEncodingError(KlimapulsError):
    """A file is not text in an encoding we can tell (binary, or not UTF-8)."""


@dataclass(frozen=True)
class DecodedText:
    """A file's text and the encoding it was read in."""

    text: str
    #: `utf-8`, or `cp1252` for a Windows/Latin-1 export (Danish letters as
    #: single bytes, as older spreadsheet exports write them).
    encoding: str


#: Control characters that do not occur in a text table (tab, CR, LF, FF do).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - start + 1


def _binary_error(source: str, data: bytes, offset: int) -> FileEncodingError:
    line, _ = _line_and_column(data, offset)
    return FileEncodingError(
        f"{source}: line {line}: binary data (byte 0x{data[offset]:02X}): "
        "this is not a text file"
    )


def decode_table(data: bytes, source: str) -> DecodedText:
    """A CSV file's text: UTF-8 (with or without BOM), else Windows-1252.

    Danish municipal exports are often Windows-1252 or Latin-1 ("København" with ø
    as one byte): a file that is not UTF-8 but reads as Windows-1252 text
    without control characters is taken as such (Latin-1 letters are the same
    bytes there). Anything else is a `FileEncodingError` naming the line, the
    column and the byte.
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _binary_error(source, data, nul)
    try:
        return DecodedText(data.decode("utf-8-sig"), "utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    try:
        legacy = data.decode("cp1252")
    except UnicodeDecodeError:
        legacy = None
    if legacy is not None:
        control = _CONTROL.search(legacy)
        if control is None:
            return DecodedText(legacy, "cp1252")
        raise _binary_error(source, data, control.start())
    line, column = _line_and_column(data, first_bad)
    raise FileEncodingError(
        f"{source}: line {line}, column {column}: byte 0x{data[first_bad]:02X} "
        "is not UTF-8 (nor Windows-1252 text); save the file as UTF-8"
    )


@dataclass(frozen=True)
class TextLine:
    """One line of a UTF-8 file: its text, or why it could not be decoded."""

    number: int
    text: str | None
    problem: str | None = None


def text_lines(data: bytes, source: str) -> list[TextLine]:
    """The lines of a UTF-8 text file (JSON Lines must be UTF-8).

    A line that is not UTF-8 gets a problem naming the byte and column, the
    other lines are still read; binary data (a NUL or control byte) is a
    `FileEncodingError` for the whole file.
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _binary_error(source, data, nul)
    lines: list[TextLine] = []
    offset = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        start, offset = offset, offset + len(raw) + 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = (
                f"byte 0x{raw[exc.start]:02X} at column {exc.start + 1} is not "
                "UTF-8 (JSON must be UTF-8; save the file as UTF-8)"
            )
            lines.append(TextLine(number, None, problem))
            continue
        control = _CONTROL.search(text)
        if control is not None:
            raise _binary_error(
                source, data, start + len(text[: control.start()].encode())
            )
        lines.append(TextLine(number, text))
    return lines


def delimiter_of(first_line: str) -> str:
    """`;` when the header has more semicolons than commas, else `,`."""
    return ";" if first_line.count(";") > first_line.count(",") else ","


@dataclass(frozen=True)
class _Row:
    number: int
    cells: dict[str, str]
    raw: str
    #: Name of the first non-empty cell beyond the header, if any.
    extra: str | None = None
    #: Why the line could not be read as CSV at all, if so.
    unreadable: str | None = None

    def check(self) -> None:
        """Refuse an unreadable line, or one with more cells than the header."""
        if self.unreadable is not None:
            raise _RowError("$", self.unreadable)
        if self.extra is not None:
            raise _RowError(
                self.extra,
                "a cell beyond the last header column (a decimal comma in a "
                "comma-separated file? quote the number or use ';')",
            )


def _norm(name: str) -> str:
    return re.sub(r"[\s_.-]+", " ", name.strip().lower())


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def physical_lines(text: str) -> Iterator[str]:
    """The lines of `text` with their ends (CR, LF or CRLF), one at a time.

    What `io.StringIO(text, newline="")` yields, without its copy of the
    whole text at four bytes a character (a year of counts is 40 MB of
    text), so a file is read in one pass with one copy in memory.
    """
    return (match.group() for match in _LINE.finditer(text))


def first_line(text: str) -> str:
    """The first line of `text`, without its end."""
    return next(physical_lines(text), "").rstrip("\r\n")


def _read(text: str) -> tuple[list[str], Iterator[_Row]]:
    delimiter = delimiter_of(first_line(text))
    # Lines with their ends: the csv module itself reads CR, LF and CRLF
    # line ends (and quoted line breaks); a bare CR inside a cell is then a
    # line end, not an error that stops the whole file.
    reader = csv.reader(physical_lines(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        return [], iter(())

    def rows() -> Iterator[_Row]:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # E.g. a cell over the csv module's size limit: say so at its
                # row and stop, as the reader cannot resynchronise.
                yield _Row(reader.line_num, {}, "", unreadable=f"not a CSV line: {exc}")
                return
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


def _fact_digest(key: tuple[Any, ...]) -> bytes:
    """16 bytes naming a fact key (`repr` of str, int and None is unambiguous)."""
    return hashlib.blake2b(repr(key).encode(), digest_size=16).digest()


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
    # Keyed by a digest of the fact key, not the key: a year of 15-minute
    # counts is a million keys, ~400 bytes each as tuples of strings.
    first_row: dict[bytes, int] = {}
    for row in rows:
        try:
            row.check()
            event, fields = convert_row(columns, row, options)
            key = _fact_digest(tuple(event.get(name) for name in _FACT_KEYS[kind]))
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
