"""Read events from CSV, JSON Lines or JSON files, with line numbers.

CSV cells are text; each is converted to the type its schema field declares
(integer, number, boolean, array of text separated by `;`). Cells may be
separated by `,` or `;` (as `klimapuls import` reads them); CSV files may be
UTF-8 or Windows-1252/Latin-1 exports. Empty cells are left out, so optional
fields may be blank. `.jsonl`/`.ndjson` files hold one event a line; a
`.json` file holds one event, a list of events, or events one after another
(pretty-printed or not). Envelope fields a file lacks are filled in:
`schema`, `producer`, `reported_at` (now) and a producer-stable `event_id`
derived from the content, so sending the same file twice stores each fact
once.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from klimapuls.core.errors import ConfigurationError, EventValidationError, FieldIssue
from klimapuls.core.validation import load_schema, parse_json, schema_name
from klimapuls.importers.table import decode_table, delimiter_of, text_lines

__all__ = [
    "FILE_TYPES",
    "Line",
    "check_file_type",
    "complete_envelope",
    "json_text",
    "json_values",
    "read_events",
]

_NAMESPACE = uuid.UUID("6f1c2f4e-8a43-4f0e-9d55-4b6b7b0c4b11")
_ENVELOPE = ("schema", "event_id", "producer", "reported_at")
#: File name endings `produce` reads.
FILE_TYPES = (".csv", ".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class Line:
    """One line of an input file: its number, its text, and the parsed event."""

    number: int
    raw: str
    event: dict[str, Any] | None
    error: EventValidationError | None = None


def check_file_type(path: Path) -> None:
    """Refuse a file whose ending `produce` does not read, naming the endings."""
    if path.suffix.lower() not in FILE_TYPES:
        raise ConfigurationError(
            f"{path}: unknown file type {path.suffix or '(no ending)'!r}; "
            f"use {', '.join(FILE_TYPES)}"
        )


def _types(field_schema: dict[str, Any]) -> list[str]:
    declared = field_schema.get("type", "string")
    return declared if isinstance(declared, list) else [declared]


def _convert(name: str, text: str, field_schema: dict[str, Any]) -> Any:
    types = _types(field_schema)
    try:
        if "integer" in types:
            return int(text)
        if "number" in types:
            return float(text.replace(",", ".") if text.count(",") == 1 else text)
        if "boolean" in types:
            return text.strip().lower() in ("1", "true", "yes", "ja")
    except ValueError as exc:
        kind = "a whole number" if "integer" in types else "a number"
        raise EventValidationError(
            [FieldIssue(name, f"{text!r} is not {kind}")]
        ) from exc
    if "array" in types:
        return [part.strip() for part in text.split(";") if part.strip()]
    return text


def _csv_row(kind: str, row: dict[str, str]) -> dict[str, Any]:
    """One row as an event; every cell that does not convert is an issue."""
    props: dict[str, Any] = load_schema(schema_name(kind))["properties"]
    event: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    for name, cell in row.items():
        if cell.strip() == "":
            continue
        try:
            if "." in name:  # nested fields as dotted columns, e.g. buses.diesel
                outer, inner = name.split(".", 1)
                sub = props.get(outer, {}).get("properties", {}).get(inner, {})
                event.setdefault(outer, {})[inner] = _convert(name, cell.strip(), sub)
            else:
                event[name] = _convert(name, cell.strip(), props.get(name, {}))
        except EventValidationError as exc:
            issues.extend(exc.issues)
    if issues:
        raise EventValidationError(issues)
    return event


def complete_envelope(
    kind: str, event: dict[str, Any], producer: str, now: datetime
) -> dict[str, Any]:
    """Fill in missing envelope fields (never overriding given ones)."""
    event = dict(event)
    event.setdefault("schema", schema_name(kind))
    event.setdefault("producer", producer)
    if "event_id" not in event:
        content = {k: v for k, v in event.items() if k not in _ENVELOPE}
        digest = json.dumps([kind, content], sort_keys=True, ensure_ascii=False)
        event["event_id"] = f"{kind}:{uuid.uuid5(_NAMESPACE, digest)}"
    event.setdefault("reported_at", now.isoformat())
    return event


def _csv_lines(kind: str, text: str, producer: str, now: datetime) -> Iterator[Line]:
    delimiter = delimiter_of(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        raw = delimiter.join(cells)
        beyond = [i for i in range(len(header), len(cells)) if cells[i].strip()]
        if beyond:
            issue = FieldIssue(
                f"column {beyond[0] + 1}",
                "a cell beyond the last header column (a decimal comma in a "
                "comma-separated file? quote the number or use ';')",
            )
            yield Line(reader.line_num, raw, None, EventValidationError([issue]))
            continue
        row = {h: cells[i] for i, h in enumerate(header) if h and i < len(cells)}
        try:
            event = complete_envelope(kind, _csv_row(kind, row), producer, now)
        except EventValidationError as exc:
            yield Line(reader.line_num, raw, None, exc)
            continue
        yield Line(reader.line_num, raw, event)


def _event_line(
    kind: str, number: int, raw: str, parsed: Any, producer: str, now: datetime
) -> Line:
    if not isinstance(parsed, dict):
        error = EventValidationError(
            [FieldIssue("$", "each event must be a JSON object")]
        )
        return Line(number, raw, None, error)
    return Line(number, raw, complete_envelope(kind, parsed, producer, now))


def _jsonl_lines(
    kind: str, data: bytes, source: str, producer: str, now: datetime
) -> Iterator[Line]:
    for line in text_lines(data, source):
        if line.text is None:
            error = EventValidationError([FieldIssue("$", line.problem or "")])
            yield Line(line.number, "", None, error)
            continue
        if not line.text.strip():
            continue
        raw = line.text.rstrip("\r")
        try:
            parsed = parse_json(raw)
        except EventValidationError as exc:
            yield Line(line.number, raw, None, exc)
            continue
        yield _event_line(kind, line.number, raw, parsed, producer, now)


def json_values(text: str) -> Iterator[tuple[int, str, Any]]:
    """The values of a `.json` document: one, a list, or one after another.

    Yields (line number, text, parsed value), or for text that is not JSON
    (line number, text, `EventValidationError`) and stops there. `produce`
    and the `--offline` readers both read `.json` files with it.
    """
    decoder = json.JSONDecoder()
    position = 0
    in_list = text.lstrip().startswith("[")
    if in_list:
        position = text.index("[") + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or (in_list and text[position] == "]"):
            return
        number = text.count("\n", 0, position) + 1
        try:
            parsed, end = decoder.raw_decode(text, position)
        except ValueError as exc:
            error = EventValidationError([FieldIssue("$", f"not valid JSON: {exc}")])
            yield number, text[position : position + 200], error
            return
        except RecursionError:
            error = EventValidationError([FieldIssue("$", "not valid JSON: too deep")])
            yield number, text[position : position + 200], error
            return
        yield number, text[position:end], parsed
        position = end


def json_text(data: bytes, source: str) -> str:
    """A `.json` file's text (UTF-8; undecodable lines read as blank)."""
    return "\n".join(
        line.text if line.text is not None else "" for line in text_lines(data, source)
    )


def _json_document(
    kind: str, text: str, producer: str, now: datetime
) -> Iterator[Line]:
    """One event, a list of events, or events one after another (any layout)."""
    for number, raw, parsed in json_values(text):
        if isinstance(parsed, EventValidationError):
            yield Line(number, raw, None, parsed)
            return
        yield _event_line(kind, number, raw, parsed, producer, now)


def read_events(kind: str, path: Path, producer: str, now: datetime) -> Iterator[Line]:
    """Yield every event of a `.csv`, `.jsonl` or `.json` file, numbered by line.

    Raises `ConfigurationError` for an unknown file ending and
    `FileEncodingError` for a file that is not text.
    """
    check_file_type(path)
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_lines(kind, decode_table(data, str(path)).text, producer, now)
    elif suffix == ".json":
        yield from _json_document(kind, json_text(data, str(path)), producer, now)
    else:
        yield from _jsonl_lines(kind, data, str(path), producer, now)
