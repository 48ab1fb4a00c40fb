"""What makes two events the same fact: one definition for storage and offline.

Every family but `target` is keyed by `event_id`:

- an id not known yet is a **new** fact;
- an id known with the same content is a **duplicate** (a replay, a re-send):
  the content is the whole event except `reported_at`, so the same file sent
  again, which stamps a new `reported_at`, stores nothing;
- an id known with other content is **rejected**: a correction needs a new id.

A target version is keyed by (`target_id`, `version`):

- a key not known yet is new, unless its `event_id` already defines another
  version (rejected: a new version needs a new id);
- a key known with the same definition is a duplicate, whatever the envelope
  (`event_id`, `producer`, `reported_at`): re-declaring a target as it
  stands, for example a seeded one, changes nothing;
- a key known with another definition is rejected: a revision needs a new
  version. The definition is `TARGET_DEFINITION`, numbers compared by value
  (85 and 85.0 are the same percentage).

`Ledger` holds what is known (rows in the database, or events read so far
from files) and `Ledger.judge` decides. The services' storage and
`klimapuls progress --offline` both call it, so they accept, drop and refuse
the same events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from klimapuls.core.errors import EventValidationError, FieldIssue

__all__ = [
    "RESEND_FIELDS",
    "TARGET_DEFINITION",
    "FactKey",
    "Identity",
    "Judgement",
    "Ledger",
    "Verdict",
    "content_digest",
    "identity_of",
    "target_digest",
]

#: Fields that say when a fact was sent, not what it is.
RESEND_FIELDS = ("reported_at",)
#: The fields that define a target version (its envelope is not part of it).
TARGET_DEFINITION = (
    "target_id",
    "version",
    "name",
    "scope",
    "indicator",
    "baseline_year",
    "baseline_value",
    "target_year",
    "reduction_pct",
    "increase_pct",
    "target_value",
    "source",
)
_TEXT_DEFAULTS = {"name": "", "source": ""}

#: What a fact is known by: `(kind, event_id)`, or `("target", id, version)`.
FactKey = tuple[str, ...]

#: What to do about a reused id, per family.
_CORRECTION_HINT = {
    "co2_account": "a restatement needs a new event_id and a later vintage",
    "fleet_status": "a restatement needs a new event_id and a later reported_at",
    "mobility_count": "a correction needs a new event_id and a higher revision",
    "initiative_status": "a new report needs a new event_id",
    "target": "a revision needs a new version and a new event_id",
}


class Verdict(StrEnum):
    """What becomes of an event: stored, dropped as a duplicate, or refused."""

    NEW = "new"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


def content_digest(event: Mapping[str, Any]) -> str:
    """Digest of an event's content: everything but `RESEND_FIELDS`.

    The canonical form (sorted keys, no spaces, ASCII) is the one stored in
    every table's `payload_sha256`, so it must not change.
    """
    content = {k: v for k, v in event.items() if k not in RESEND_FIELDS}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


def _definition_value(definition: Mapping[str, Any], name: str) -> Any:
    value = _number(definition.get(name))
    if name in _TEXT_DEFAULTS and not value:
        return _TEXT_DEFAULTS[name]  # a missing name is the empty name
    return value


def target_digest(definition: Mapping[str, Any]) -> str:
    """Digest of a target version's definition (an event, or a stored row)."""
    canonical = {
        name: _definition_value(definition, name) for name in TARGET_DEFINITION
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """How a fact is known: its key, the event id that brought it, its digest."""

    key: FactKey
    event_id: str
    digest: str


def identity_of(kind: str, event: Mapping[str, Any]) -> Identity:
    """The identity of a validated event of `kind`."""
    event_id = str(event["event_id"])
    if kind == "target":
        key = ("target", str(event["target_id"]), str(event["version"]))
        return Identity(key, event_id, target_digest(event))
    return Identity((kind, event_id), event_id, content_digest(event))


@dataclass(frozen=True)
class Judgement:
    """The verdict on one event, with its identity and, if refused, why."""

    verdict: Verdict
    identity: Identity
    issue: FieldIssue | None = None

    @property
    def error(self) -> EventValidationError:
        """The refusal as a validation error (only for `REJECTED`)."""
        if self.issue is None:
            raise ValueError(f"a {self.verdict} event has no error")
        return EventValidationError([self.issue])


@dataclass
class Ledger:
    """The facts known so far, by key and by event id, and the rules above.

    `judge` records every new fact, so events of one batch (or one file) are
    judged against each other too, in order: of two events with one id and
    two contents, the first is kept and the second refused.
    """

    kind: str
    by_key: dict[FactKey, Identity] = field(default_factory=dict)
    by_event_id: dict[str, Identity] = field(default_factory=dict)

    @classmethod
    def of(cls, kind: str, known: Iterable[Identity]) -> Ledger:
        """A ledger of `kind` that already knows `known` (e.g. stored rows)."""
        ledger = cls(kind)
        for identity in known:
            ledger.know(identity)
        return ledger

    def know(self, identity: Identity) -> None:
        """Record a fact as known."""
        self.by_key.setdefault(identity.key, identity)
        self.by_event_id.setdefault(identity.event_id, identity)

    def judge(self, event: Mapping[str, Any]) -> Judgement:
        """New, duplicate or rejected; a new fact is recorded as known."""
        identity = identity_of(self.kind, event)
        by_id = self.by_event_id.get(identity.event_id)
        if by_id is not None and by_id.key != identity.key:
            return Judgement(Verdict.REJECTED, identity, self._names_other(by_id))
        known = self.by_key.get(identity.key)
        if known is None:
            self.know(identity)
            return Judgement(Verdict.NEW, identity)
        if known.digest == identity.digest:
            return Judgement(Verdict.DUPLICATE, identity)
        return Judgement(Verdict.REJECTED, identity, self._differs(identity, known))

    def _names_other(self, other: Identity) -> FieldIssue:
        _, target_id, version = other.key
        return FieldIssue(
            "event_id",
            f"{other.event_id!r} already defines version {version} of "
            f"{target_id!r}: {_CORRECTION_HINT['target']}",
        )

    def _differs(self, identity: Identity, known: Identity) -> FieldIssue:
        hint = _CORRECTION_HINT.get(self.kind, "a correction needs a new event_id")
        if self.kind == "target":
            _, target_id, version = identity.key
            return FieldIssue(
                "version",
                f"version {version} of {target_id!r} is already known with "
                f"different content (event {known.event_id!r}): {hint}",
            )
        return FieldIssue(
            "event_id",
            f"{identity.event_id!r} is already known with different content: {hint}",
        )
