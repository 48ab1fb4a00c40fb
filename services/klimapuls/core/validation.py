"""Event validation: JSON Schema 2020-12 first, then the domain rules.

Every failure names the field (as a JSON path such as `buses.diesel`, or `$`
for the event as a whole) and the reason, so a producer can fix the line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from klimapuls.core.deadletter import (
    MAX_FIELD_CHARS,
    MAX_REASON_CHARS,
    clip,
    safe_text,
)
from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.fleet import fleet_issues
from klimapuls.core.initiatives import initiative_issues
from klimapuls.core.mobility import mobility_issues, parse_moment

__all__ = [
    "EVENT_KINDS",
    "FACT_HORIZON",
    "MAX_DEPTH",
    "OUTBOUND_KINDS",
    "PLAN_HORIZON",
    "REPORT_HORIZON",
    "decode_event",
    "horizon_issues",
    "load_schema",
    "parse_json",
    "preview",
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
#: Messages the services publish (outbound contracts), validated the same way.
OUTBOUND_KINDS: tuple[str, ...] = ("target_status", "series_change", "dead_letter")
_CURRENT_VERSION = "v1"
#: Every family's and outbound message's schema name (looked up per event).
_SCHEMA_NAMES = {
    kind: f"{kind}.{_CURRENT_VERSION}" for kind in (*EVENT_KINDS, *OUTBOUND_KINDS)
}


def schema_name(kind: str) -> str:
    """The versioned schema name of an event family, e.g. `co2_account.v1`."""
    name = _SCHEMA_NAMES.get(kind)
    if name is None:
        raise ValueError(
            f"unknown event kind {kind!r}; one of {', '.join(EVENT_KINDS)}"
        )
    return name


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


def _format_test(checker: FormatChecker, name: str) -> Callable[[Any], bool]:
    """The checker's own test of format `name`, called directly.

    The same function and the same exceptions as `checker.conforms`, without
    its per-call lookup (a count has three date-times).
    """
    test, raises = checker.checkers[name]

    def conforms(value: Any) -> bool:
        try:
            return bool(test(value))
        except raises:
            return False

    # Remembered by text (the test is a pure function of it): the counts of
    # one hour share their interval's and often their `reported_at`.
    remembered = lru_cache(maxsize=4096)(conforms)

    def conforms_remembered(value: Any) -> bool:
        return remembered(value) if type(value) is str else conforms(value)

    return conforms_remembered


@cache
def _fast_check(name: str) -> Callable[[Any], bool]:
    """A compiled validator of `name`: True when the event conforms.

    jsonschema-rs (Rust; 1.9 us a count, against 3.6 for fastjsonschema
    and ~60 for the full validator, which is then run only on events that
    fail, to name every field and reason). Formats
    are checked by jsonschema's own format checker (called back by text),
    so both validators accept the same events (a differential test in
    tests/fuzz holds them to it); where the two read a pattern differently
    (Python's `$` also matches before a final newline), the compiled one
    refuses and the full one decides.
    """
    checker = FormatChecker()
    formats = {name: _format_test(checker, name) for name in ("date", "date-time")}
    compiled = jsonschema_rs.validator_for(
        load_schema(name), validate_formats=True, formats=formats
    )

    def conforms(event: Any) -> bool:
        try:
            return bool(compiled.is_valid(event))
        except (ValueError, TypeError, OverflowError):
            return False  # a value JSON has no word for: the full validator says

    return conforms


def schema_errors(name: str, event: Any) -> list[ValidationError]:
    """Every schema error of `event` (the full validator), in field order."""
    return sorted(
        _validator(name).iter_errors(event), key=lambda e: list(e.absolute_path)
    )


def _alternatives(error: ValidationError) -> list[str]:
    """Fields of an `anyOf` whose branches only say "this one is required"."""
    if error.validator != "anyOf":
        return []
    names: list[str] = []
    for branch in error.validator_value:
        # {"required": [x]} or {"required": [x], "properties": {x: ...}}
        if not isinstance(branch, dict) or "required" not in branch:
            return []
        if not set(branch) <= {"required", "properties"}:
            return []
        names.extend(branch["required"])
    return names


_TYPE_WORDS = {
    "number": "a number",
    "integer": "a whole number",
    "string": "text",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _json_text(value: Any) -> str:
    """A value as JSON spells it (`true`, `null`, `"x"`), cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return preview(value)
    return text if len(text) <= _PREVIEW_CHARS else preview(value)


def _type_message(error: ValidationError) -> str:
    wanted = error.validator_value
    types = wanted if isinstance(wanted, list) else [wanted]
    words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)
    return f"{_json_text(error.instance)} is not {words}"


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
    return safe_text(".".join(p for p in parts if p) or "$", MAX_FIELD_CHARS)


def _reason(error: ValidationError) -> str:
    return clip(_message(error), MAX_REASON_CHARS)


def _message(error: ValidationError) -> str:
    if error.validator == "enum" and len(error.validator_value) > 8:
        return f"{preview(error.instance)} is not an allowed value"
    if error.validator == "additionalProperties":
        return "unknown field (not in the schema)"
    if error.validator == "required":
        return "is required"
    if error.validator == "type":
        return _type_message(error)
    alternatives = _alternatives(error)
    if alternatives:
        return f"give at least one of {', '.join(alternatives)}"
    if error.validator == "anyOf" and error.absolute_path and error.context:
        # A field with alternative forms: say why each form does not fit.
        first, *rest = (_message(sub) for sub in error.context)
        prefix = f"{preview(error.instance)} "
        return " and ".join([first, *(r.removeprefix(prefix) for r in rest)])
    full = repr(error.instance)
    if len(full) > _PREVIEW_CHARS and full in error.message:
        # jsonschema quotes the whole value ("'xxx…' is too long"): cut it.
        return error.message.replace(full, preview(error.instance))
    return error.message


#: Larger integers lose precision in JSON consumers and overflow `bigint`.
_MAX_SAFE_INTEGER = 2**53
#: Deepest nesting an event may have (events are two or three levels deep).
MAX_DEPTH = 16


def _text_issue(text: str) -> str | None:
    """Why `text` cannot be stored as text (NUL, lone surrogates), or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def _scalar_issue(value: Any) -> str | None:
    if isinstance(value, str):
        return _text_issue(value)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > _MAX_SAFE_INTEGER:
            return f"{preview(value)} is too large"
    return None


def _clean_scalar(value: Any, texts: list[str]) -> bool:
    """Whether `value` is a scalar without issues (its text goes to `texts`)."""
    if type(value) is str:
        texts.append(value)
        return True
    if type(value) in (int, float, bool) or value is None:
        return _scalar_issue(value) is None
    return False


def _clean(event: Any) -> bool:
    """True when `_value_issues` would find nothing (the fast, common case).

    Objects of scalars, as events are, with at most one level of objects or
    lists of scalars inside (a fleet report's `buses` and `bus_ids`), are
    checked without building field paths, and all their text at once (a NUL
    or lone surrogate in any name or value is one in the text joined);
    anything deeper goes the long way.
    """
    if type(event) is not dict:
        return False
    texts: list[str] = []
    for key, value in event.items():
        if type(key) is not str:
            return False
        texts.append(key)
        if type(value) is dict:
            for inner, item in value.items():
                if type(inner) is not str or not _clean_scalar(item, texts):
                    return False
                texts.append(inner)
        elif type(value) is list:
            if not all(_clean_scalar(item, texts) for item in value):
                return False
        elif not _clean_scalar(value, texts):
            return False
    joined = "".join(texts)
    # isascii() is the common case and needs no encoding attempt.
    return "\x00" not in joined and (joined.isascii() or _text_issue(joined) is None)


def _value_issues(event: Any) -> list[FieldIssue]:
    """Values no field may hold: NUL characters, lone surrogates, NaN, huge numbers.

    JSON Schema lets them through, but PostgreSQL refuses NUL in text and
    overflows on huge numbers, the driver cannot encode lone surrogates, and
    NaN poisons every sum it enters. Caught here, they become a dead letter
    instead of a failing batch. Walked with a stack, not by recursion, and
    only `MAX_DEPTH` deep.
    """
    return [] if _clean(event) else _walk_issues(event)


def _walk_issues(event: Any) -> list[FieldIssue]:
    """`_value_issues` the long way: every value, with its field path."""
    issues: list[FieldIssue] = []
    stack: list[tuple[str, Any, int]] = [("", event, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return [FieldIssue(path or "$", f"nested deeper than {MAX_DEPTH} levels")]
        if isinstance(value, dict):
            items: list[tuple[str, Any]] = []
            for key, item in value.items():
                name = f"{path}.{key}" if path else str(key)
                why = _text_issue(key)
                if why is not None:
                    issues.append(FieldIssue(safe_text(name, 200), f"name {why}"))
                    continue
                items.append((name, item))
            stack.extend((name, item, depth + 1) for name, item in reversed(items))
        elif isinstance(value, list):
            stack.extend(
                (f"{path}.{i}" if path else str(i), item, depth + 1)
                for i, item in reversed(list(enumerate(value)))
            )
        else:
            why = _scalar_issue(value)
            if why is not None:
                issues.append(FieldIssue(path or "$", why))
    return issues


_PREVIEW_CHARS = 60


def preview(value: Any) -> str:
    """A short `repr` of a value for messages: long values are cut and sized."""
    text = repr(value)
    if len(text) <= _PREVIEW_CHARS:
        return text
    size = len(value) if isinstance(value, str | list | dict) else len(text)
    unit = "characters" if isinstance(value, str) else "items"
    if not isinstance(value, str | list | dict):
        unit = "digits"
    return f"{text[:_PREVIEW_CHARS]}… ({size:,} {unit})"


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


#: How far after "now" (the receiving service's clock) `reported_at` may lie:
#: room for clocks that run a little ahead, not for facts from the future.
REPORT_HORIZON = timedelta(days=1)
#: How far after its `reported_at` an observed time may lie (a count's
#: `interval_end`, a CO2 account's `vintage`): a fact is observed before it
#: is reported; a day covers producers whose clock runs in another zone.
FACT_HORIZON = timedelta(days=1)
#: How far after its `reported_at` a planned date may lie (a reporting
#: `round`, the `effective_date` of a hand-over announced in advance).
PLAN_HORIZON = timedelta(days=366)


def _moment(text: Any) -> datetime | None:
    """An RFC 3339 date-time as an aware datetime, or None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = parse_moment(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _too_late(
    name: str, value: datetime, bound: datetime, after: str, horizon: timedelta
) -> FieldIssue | None:
    if value <= bound + horizon:
        return None
    days = horizon.days
    return FieldIssue(
        name,
        f"{value.isoformat()} is more than {days} day{'s' if days != 1 else ''} "
        f"after {after}: a time beyond the horizon (a clock or typing error?)",
    )


def _start_of(day: date, like: datetime) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=like.tzinfo)


def _fact_times(kind: str, event: dict[str, Any]) -> list[tuple[str, datetime, str]]:
    """The times of `event` bounded by its `reported_at`: (field, time, horizon)."""
    reported = _moment(event.get("reported_at"))
    if reported is None:
        return []
    times: list[tuple[str, datetime, str]] = []
    if kind == "co2_account":
        vintage = date.fromisoformat(event["vintage"])
        times.append(("vintage", _start_of(vintage, reported), "fact"))
    elif kind == "mobility_count":
        end = _moment(event.get("interval_end"))
        if end is not None:
            times.append(("interval_end", end, "fact"))
    elif kind == "initiative_status":
        year, month = (int(p) for p in event["round"].split("-"))
        times.append(("round", _start_of(date(year, month, 1), reported), "plan"))
        if event.get("effective_date"):
            effective = date.fromisoformat(event["effective_date"])
            times.append(("effective_date", _start_of(effective, reported), "plan"))
    return times


def horizon_issues(
    kind: str, event: dict[str, Any], now: datetime | None
) -> list[FieldIssue]:
    """Times beyond the horizon: after `reported_at`, or `reported_at` after now.

    `now` is the receiving service's clock, passed in (never read here);
    without it only the times after `reported_at` are checked. A future
    fact would otherwise be stored and counted (and, for counts, create a
    partition for its month).
    """
    issues: list[FieldIssue] = []
    reported = _moment(event.get("reported_at"))
    if reported is None:
        return issues
    if now is not None:
        issue = _too_late("reported_at", reported, now, "now", REPORT_HORIZON)
        if issue is not None:
            issues.append(issue)
    horizons = {"fact": FACT_HORIZON, "plan": PLAN_HORIZON}
    for name, moment, which in _fact_times(kind, event):
        issue = _too_late(name, moment, reported, "reported_at", horizons[which])
        if issue is not None:
            issues.append(issue)
    return issues


def validate_event(
    kind: str, event: Any, *, now: datetime | None = None
) -> dict[str, Any]:
    """Check `event` against the schema and rules of `kind`.

    Returns the event unchanged; raises `EventValidationError` listing every
    issue (field path and reason), schema issues first. `now` (the caller's
    clock) also refuses a `reported_at` beyond `REPORT_HORIZON`; times after
    `reported_at` beyond `FACT_HORIZON` / `PLAN_HORIZON` are refused always.
    """
    return _validated(kind, event, now, values_clean=False)


def _validated(
    kind: str, event: Any, now: datetime | None, *, values_clean: bool
) -> dict[str, Any]:
    """`validate_event`; `values_clean`: `_value_issues` is known to find none."""
    if not isinstance(event, dict):
        raise EventValidationError([FieldIssue("$", "an event must be a JSON object")])
    name = schema_name(kind)
    declared = event.get("schema")
    if declared is not None and declared != name:
        raise EventValidationError(
            [
                FieldIssue(
                    "schema",
                    f"expected {name!r} on this topic, got {preview(declared)}",
                )
            ]
        )
    values = [] if values_clean else _value_issues(event)
    if values:
        raise EventValidationError(values)
    if not _fast_check(name)(event):
        errors = schema_errors(name, event)
        # One issue per field and reason: `if`/`then` branches can repeat one.
        issues = list(dict.fromkeys(FieldIssue(_path(e), _reason(e)) for e in errors))
        if issues:
            raise EventValidationError(issues)
    domain = _domain_issues(kind, event)
    if kind in EVENT_KINDS and not domain:
        # One reason per mistake: a count reported before its interval
        # began also ends after it was reported, which says nothing new.
        domain = horizon_issues(kind, event, now)
    if domain:
        raise EventValidationError(domain)
    return event


#: Digits enough for an integer beyond 63 bits (orjson would make it a float).
_LONG_DIGITS = 19
#: Digits enough for an integer beyond 2**53 (`_MAX_SAFE_INTEGER`, 16 digits).
_UNSAFE_DIGITS = 16
#: Every byte as "0" if it is an ASCII digit (what `\d` matches in bytes),
#: else "x": a run of digits is then found by a plain substring search,
#: several times faster than the regular expression `\d{19,}`.
_DIGITS_AS_ZERO = bytes(
    b"0"[0] if b"0"[0] <= b <= b"9"[0] else b"x"[0] for b in range(256)
)


def _digit_runs(raw: bytes) -> bytes:
    """`raw` with every ASCII digit as "0" and every other byte as "x"."""
    return raw.translate(_DIGITS_AS_ZERO)


_LONG_RUN = b"0" * _LONG_DIGITS
_UNSAFE_RUN = b"0" * _UNSAFE_DIGITS
_NUL_ESCAPE = b"\\u0000"


def parse_json(raw: bytes | str) -> Any:
    """Parse JSON text; any failure, at any depth, is an `EventValidationError`.

    orjson parses what it can (about 8x faster); whatever it refuses (NaN,
    lone surrogates, other encodings, deep nesting) is parsed again by the
    standard library, whose result and error message are the rule, so both
    paths give the same answer. orjson reads an integer beyond 64 bits as a
    float instead of refusing it, so a body with a run of 19 or more digits
    goes to the standard library at once (it keeps such a number exact, and
    the value rules then call it too large).
    """
    return _parse(raw)[0]


def _parse(raw: bytes | str) -> tuple[Any, bool]:
    """`parse_json`, and whether the value is known to hold no `_value_issues`.

    Known from the text when orjson parsed it: orjson refuses NaN,
    infinities, lone surrogates and raw control characters, so what is left
    to look for is a NUL (only as the escape backslash-u0000), an integer beyond
    2**53 (a run of 16 digits or more) and nesting deeper than `MAX_DEPTH`
    (no deeper than the brackets opened). A text that may hold one (a long
    float has a long run too) has its values walked as before; a
    differential test in tests/fuzz holds the two to the same answer.
    """
    # A lone surrogate in text is kept as bytes orjson refuses.
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    digits = _digit_runs(data)
    if _LONG_RUN not in digits:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            clean = (
                _UNSAFE_RUN not in digits
                and _NUL_ESCAPE not in data
                and data.count(b"{") + data.count(b"[") <= MAX_DEPTH
            )
            return value, clean
    return _parse_slowly(raw), False


def _parse_slowly(raw: bytes | str) -> Any:
    """The standard library's parse: its result and its message are the rule."""
    try:
        return json.loads(raw)
    except RecursionError as exc:
        reason = f"not valid JSON: nested deeper than {MAX_DEPTH} levels"
        raise EventValidationError([FieldIssue("$", reason)]) from exc
    except (ValueError, TypeError) as exc:
        # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
        reason = clip(f"not valid JSON: {exc}", MAX_REASON_CHARS)
        raise EventValidationError([FieldIssue("$", reason)]) from exc


def decode_event(
    kind: str, raw: bytes | str, *, now: datetime | None = None
) -> dict[str, Any]:
    """Parse a message body as JSON and validate it as `kind` (see `validate_event`)."""
    event, values_clean = _parse(raw)
    return _validated(kind, event, now, values_clean=values_clean)
