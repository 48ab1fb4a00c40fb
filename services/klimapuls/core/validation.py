"""Event validation: JSON Schema 2020-12 first, then the domain rules.

Every failure names the field (as a JSON path such as `buses.diesel`, or `$`
for the event as a whole) and the reason, so a producer can fix the line.
"""

from __future__ import annotations

import json
import math
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.fleet import fleet_issues
from klimapuls.core.initiatives import initiative_issues
from klimapuls.core.mobility import mobility_issues

__all__ = [
    "EVENT_KINDS",
    "decode_event",
    "load_schema",
    "schema_name",
    "validate_event",
]

#: Event families, each with one current schema version.
EVENT_KINDS: tuple[str, ...] = (
    "co2_account",
    "target",
    "fleet_status",
    "mobility_count",
    "initiative_status",
)
_CURRENT_VERSION = "v1"


def schema_name(kind: str) -> str:
    """The versioned schema name of an event family, e.g. `co2_account.v1`."""
    if kind not in EVENT_KINDS:
        raise ValueError(
            f"unknown event kind {kind!r}; one of {', '.join(EVENT_KINDS)}"
        )
    return f"{kind}.{_CURRENT_VERSION}"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema document `schemas/NAME.json`."""
    text = (
        resources.files("klimapuls.schemas")
        .joinpath(f"{name}.json")
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def _alternatives(error: ValidationError) -> list[str]:
    """Fields of an `anyOf` whose branches only say "this one is required"."""
    if error.validator != "anyOf":
        return []
    names: list[str] = []
    for branch in error.validator_value:
        if not isinstance(branch, dict) or set(branch) != {"required"}:
            return []
        names.extend(branch["required"])
    return names


def _path(error: ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    alternatives = _alternatives(error)
    if alternatives:
        # "give contract or garage": name the first one, as a field to fill.
        parts.append(alternatives[0])
    if error.validator == "required" and isinstance(error.message, str):
        # jsonschema reports a missing field at its parent; name the field.
        missing = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(missing)
    if error.validator == "additionalProperties":
        extra = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(extra)
    return ".".join(p for p in parts if p) or "$"


def _reason(error: ValidationError) -> str:
    if error.validator == "enum" and len(error.validator_value) > 8:
        return f"{error.instance!r} is not an allowed value"
    if error.validator == "additionalProperties":
        return "unknown field (not in the schema)"
    if error.validator == "required":
        return "is required"
    alternatives = _alternatives(error)
    if alternatives:
        return f"give at least one of {', '.join(alternatives)}"
    if error.validator == "anyOf" and error.absolute_path and error.context:
        # A field with alternative forms: say why each form does not fit.
        first, *rest = (_reason(sub) for sub in error.context)
        prefix = f"{error.instance!r} "
        return " and ".join([first, *(r.removeprefix(prefix) for r in rest)])
    return error.message


#: Larger integers lose precision in JSON consumers and overflow `bigint`.
_MAX_SAFE_INTEGER = 2**53


def _value_issues(value: Any, path: str = "") -> list[FieldIssue]:
    """Values no field may hold: NUL characters, NaN/Infinity, huge integers.

    JSON Schema lets them through, but PostgreSQL refuses NUL in text and
    overflows on huge numbers, and NaN poisons every sum it enters. Caught
    here, they become a dead letter instead of a failing batch.
    """
    where = path or "$"
    if isinstance(value, dict):
        return [
            issue
            for key, item in value.items()
            for issue in _value_issues(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        return [
            issue
            for i, item in enumerate(value)
            for issue in _value_issues(item, f"{path}.{i}" if path else str(i))
        ]
    if isinstance(value, str) and "\x00" in value:
        return [FieldIssue(where, "contains a NUL character")]
    if isinstance(value, float) and not math.isfinite(value):
        return [FieldIssue(where, f"{value} is not a finite number")]
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > _MAX_SAFE_INTEGER:
            return [FieldIssue(where, f"{value} is too large")]
    return []


def _domain_issues(kind: str, event: dict[str, Any]) -> list[FieldIssue]:
    """Rules JSON Schema cannot say: relations between fields."""
    issues: list[FieldIssue] = []
    if kind == "co2_account":
        vintage = date.fromisoformat(event["vintage"])
        if vintage.year <= event["year"]:
            issues.append(
                FieldIssue(
                    "vintage",
                    f"figures for {event['year']} cannot be computed on "
                    f"{event['vintage']} (before the year ended)",
                )
            )
    elif kind == "target":
        baseline = event.get("baseline_year")
        deadline = event.get("target_year")  # None: no deadline stated
        if baseline is not None and deadline is not None and baseline >= deadline:
            issues.append(FieldIssue("target_year", "must be after baseline_year"))
    elif kind == "fleet_status":
        issues.extend(fleet_issues(event))
    elif kind == "mobility_count":
        issues.extend(mobility_issues(event))
    elif kind == "initiative_status":
        issues.extend(initiative_issues(event))
    return issues


def validate_event(kind: str, event: Any) -> dict[str, Any]:
    """Check `event` against the schema and rules of `kind`.

    Returns the event unchanged; raises `EventValidationError` listing every
    issue (field path and reason), schema issues first.
    """
    if not isinstance(event, dict):
        raise EventValidationError([FieldIssue("$", "an event must be a JSON object")])
    name = schema_name(kind)
    declared = event.get("schema")
    if declared is not None and declared != name:
        raise EventValidationError(
            [FieldIssue("schema", f"expected {name!r} on this topic, got {declared!r}")]
        )
    values = _value_issues(event)
    if values:
        raise EventValidationError(values)
    errors = sorted(
        _validator(name).iter_errors(event), key=lambda e: list(e.absolute_path)
    )
    issues = [FieldIssue(_path(e), _reason(e)) for e in errors]
    if issues:
        raise EventValidationError(issues)
    domain = _domain_issues(kind, event)
    if domain:
        raise EventValidationError(domain)
    return event


def decode_event(kind: str, raw: bytes | str) -> dict[str, Any]:
    """Parse a message body as JSON and validate it as `kind`."""
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventValidationError([FieldIssue("$", f"not valid JSON: {exc}")]) from exc
    return validate_event(kind, event)
