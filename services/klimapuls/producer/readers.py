"""Read events from CSV or JSONL files, line by line, with line numbers.

CSV cells are text; each is converted to the type its schema field declares
(integer, number, boolean, array of text separated by `;`). Empty cells are
left out, so optional fields may be blank. Envelope fields a file lacks are
filled in: `schema`, `producer`, `reported_at` (now) and a producer-stable
`event_id` derived from the content, so sending the same file twice stores
each fact once.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.validation import load_schema, parse_json, schema_name

__all__ = ["Line", "complete_envelope", "read_events"]

_NAMESPACE = uuid.UUID("6f1c2f4e-8a43-4f0e-9d55-4b6b7b0c4b11")
_ENVELOPE = ("schema", "event_id", "producer", "reported_at")


@dataclass(frozen=True)
class Line:
    """One line of an input file: its number, its text, and the parsed event."""

    number: int
    raw: str
    event: dict[str, Any] | None
    error: EventValidationError | None = None


def _types(field_schema: dict[str, Any]) -> list[str]:
    declared = field_schema.get("type", "string")
    return declared if isinstance(declared, list) else [declared]


def _convert(name: str, text: str, field_schema: dict[str, Any]) -> Any:
    types = _types(field_schema)
    try:
        if "integer" in types:
            return int(text)
        if "number" in types:
            return float(text)
        if "boolean" in types:
            return text.strip().lower() in ("1", "true", "yes", "ja")
    except ValueError as exc:
        kind = "an integer" if "integer" in types else "a number"
        raise EventValidationError(
            [FieldIssue(name, f"{text!r} is not {kind}")]
        ) from exc
    if "array" in types:
        return [part.strip() for part in text.split(";") if part.strip()]
    return text


def _csv_row(kind: str, row: dict[str, str]) -> dict[str, Any]:
    props: dict[str, Any] = load_schema(schema_name(kind))["properties"]
    event: dict[str, Any] = {}
    for name, cell in row.items():
        if name is None or cell is None or cell.strip() == "":
            continue
        name = name.strip()
        if "." in name:  # nested fields as dotted columns, e.g. buses.diesel
            outer, inner = name.split(".", 1)
            sub = props.get(outer, {}).get("properties", {}).get(inner, {})
            event.setdefault(outer, {})[inner] = _convert(name, cell.strip(), sub)
        else:
            event[name] = _convert(name, cell.strip(), props.get(name, {}))
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


def read_events(kind: str, path: Path, producer: str, now: datetime) -> Iterator[Line]:
    """Yield every data line of a `.csv` or `.jsonl` file (blank lines skipped)."""
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if suffix == ".csv":
            reader = csv.DictReader(handle)
            for row in reader:
                raw = ",".join(v or "" for v in row.values())
                try:
                    event = complete_envelope(kind, _csv_row(kind, row), producer, now)
                except EventValidationError as exc:
                    yield Line(reader.line_num, raw, None, exc)
                    continue
                yield Line(reader.line_num, raw, event)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    parsed = parse_json(raw)
                except EventValidationError as exc:
                    yield Line(number, raw.rstrip("\n"), None, exc)
                    continue
                if not isinstance(parsed, dict):
                    error = EventValidationError(
                        [FieldIssue("$", "each line must be a JSON object")]
                    )
                    yield Line(number, raw.rstrip("\n"), None, error)
                    continue
                yield Line(
                    number,
                    raw.rstrip("\n"),
                    complete_envelope(kind, parsed, producer, now),
                )
        else:
            raise ValueError(
                f"{path}: unknown file type {suffix!r}; use .csv or .jsonl"
            )
