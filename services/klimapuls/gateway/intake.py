"""What the gateway checks in a request body, before anything is sent (no I/O).

A body is one event (a JSON object) or a batch (a JSON array of them). Each
event names its family by `schema` (e.g. `co2_account.v1`). The
authenticated producer is stamped on every event first, then each event is
validated with the project's own rules (`core.validation`) and authorised
with `core.authorisation`. A request is all or nothing: one invalid event
refuses the whole batch (422), one unauthorised event too (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from klimapuls.core.authorisation import Grants, authorisation_issue
from klimapuls.core.deadletter import MAX_FIELD_CHARS, safe_text
from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.validation import (
    EVENT_KINDS,
    parse_json,
    schema_name,
    validate_event,
)

__all__ = ["Checked", "Issue", "check_body", "kind_of"]

_KINDS_BY_SCHEMA = {schema_name(kind): kind for kind in EVENT_KINDS}


@dataclass(frozen=True)
class Issue:
    """One reason a request is refused: which event, which field, why."""

    index: int | None
    event_id: str | None
    field: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        """`{"index", "event_id", "field", "reason"}` for the response body."""
        return {
            "index": self.index,
            "event_id": self.event_id,
            "field": self.field,
            "reason": self.reason,
        }


@dataclass
class Checked:
    """A checked body: the events to send by family, or the issues."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    invalid: list[Issue] = field(default_factory=list)
    forbidden: list[Issue] = field(default_factory=list)
    #: Each refused event's body as sent (index -> item), for dead letters.
    refused: dict[int | None, Any] = field(default_factory=dict)


def kind_of(event: dict[str, Any]) -> str:
    """The family an event names by `schema`; `EventValidationError` if none."""
    declared = event.get("schema")
    if isinstance(declared, str) and declared in _KINDS_BY_SCHEMA:
        return _KINDS_BY_SCHEMA[declared]
    allowed = ", ".join(_KINDS_BY_SCHEMA)
    reason = "is required" if declared is None else "is not a known schema"
    raise EventValidationError([FieldIssue("schema", f"{reason}; one of {allowed}")])


def _event_id(item: Any) -> str | None:
    value = item.get("event_id") if isinstance(item, dict) else None
    return safe_text(value, MAX_FIELD_CHARS) if isinstance(value, str) else None


def _items(body: Any) -> list[Any]:
    if isinstance(body, list):
        if not body:
            raise EventValidationError(
                [FieldIssue("$", "a batch must hold at least one event")]
            )
        return body
    return [body]


def check_body(raw: bytes, producer: str, grants: Grants) -> Checked:
    """Parse, stamp, validate and authorise every event of a request body."""
    checked = Checked()
    try:
        items = _items(parse_json(raw))
    except EventValidationError as exc:
        checked.invalid = [Issue(None, None, i.field, i.reason) for i in exc.issues]
        checked.refused[None] = raw
        return checked
    for index, item in enumerate(items):
        _check_item(checked, index, item, producer, grants)
    return checked


def _check_item(
    checked: Checked, index: int, item: Any, producer: str, grants: Grants
) -> None:
    event_id = _event_id(item)
    try:
        if not isinstance(item, dict):
            raise EventValidationError(
                [FieldIssue("$", "an event must be a JSON object")]
            )
        event = {**item, "producer": producer}
        kind = kind_of(event)
        validate_event(kind, event)
    except EventValidationError as exc:
        checked.invalid.extend(
            Issue(index, event_id, i.field, i.reason) for i in exc.issues
        )
        checked.refused[index] = item
        return
    issue = authorisation_issue(grants, kind, event)
    if issue is not None:
        checked.forbidden.append(Issue(index, event_id, issue.field, issue.reason))
        checked.refused[index] = item
        return
    checked.events.append((kind, event))
