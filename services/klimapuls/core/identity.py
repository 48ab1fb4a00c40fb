"""What makes two events the same fact: one definition for storage and offline.

Every family but `target` is keyed by `event_id`:

- an id not known yet is a **new** fact;
- an id known with the same content is a **duplicate** (a replay, a re-send):
  the content is the whole event except `reported_at`, numbers by value
  (1100 and 1100.0 are the same), so the same file sent again, which stamps
  a new `reported_at`, stores nothing;
- except a **re-send of a superseded fact**: an id known with the same
  content, sent again with a later `reported_at` after another report took
  its place (file A, then B, then A again), is a new report of the old
  content. It is stored under the id `EVENT_ID~REPORTED_AT` (`resend_id`;
  `~` cannot occur in an event id) and, ranked by its new `reported_at`,
  makes the old content current again. What a report competes with is its
  family's *slot* (a figure's subsector and vintage, a fleet unit and date,
  a count key, an initiative's round), ranked by the family's own rule
  (`slot` and `rank` of `Co2Account`, `FleetSnapshot`, `MobilityCount`,
  `StatusReport`); a re-send that would not win its slot (it is still
  current, or a higher count revision stands) stays a duplicate, and the
  same re-send replayed is a duplicate of its stored report;
- an id known with other content is **rejected**: a correction needs a new id.

A target version is keyed by (`target_id`, `version`):

- a key not known yet is new, unless its `event_id` already defines another
  version (rejected: a new version needs a new id);
- a key known with the same definition is a duplicate, whatever the envelope
  (`event_id`, `producer`, `reported_at`): re-declaring a target as it
  stands, for example a seeded one, changes nothing;
- a key known with another definition is rejected: a revision needs a new
  version. The definition is `TARGET_DEFINITION`, numbers compared by value
  (85 and 85.0 are the same percentage);
- a new version keeps its target's scope: a target belongs to the scope of
  the versions known of it, and a version naming another scope is rejected
  (`moved_scope_issue`), so a producer granted one scope cannot take over
  another scope's target id, nor move one out of it.

`Ledger` holds what is known (rows in the database, or events read so far
from files) and `Ledger.judge` decides. The services' storage and
`klimapuls progress --offline` both call it, so they accept, drop and refuse
the same events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cache, cached_property
from typing import Any, Protocol

import orjson

from klimapuls.core.errors import EventValidationError, FieldIssue

__all__ = [
    "RESEND_FIELDS",
    "RESEND_MARK",
    "TARGET_DEFINITION",
    "Admit",
    "FactKey",
    "Identity",
    "Judgement",
    "Ledger",
    "Verdict",
    "content_digest",
    "fact_of",
    "identity_of",
    "legacy_digest",
    "moved_scope_issue",
    "origin_id",
    "resend_id",
    "stored_identity",
    "target_digest",
]

#: A last rule on a fact about to be recorded as new: why it is refused, or
#: None once it is admitted (`Ledger.judge`).
Admit = Callable[[Mapping[str, Any]], FieldIssue | None]

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
#: What reports restate each other in, and their order there (family rules).
Slot = tuple[Any, ...]
Rank = tuple[Any, ...]
#: Joins an event id and a re-send's `reported_at` (never in an event id).
RESEND_MARK = "~"

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


def _number(value: Any) -> Any:
    """A number by its value: an integral float or Decimal as the int it equals."""
    if type(value) is float:  # the common number, without the checks below
        return int(value) if value.is_integer() else value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, int):
        return value  # exact, however large
    if isinstance(value, Decimal) and value.is_finite():
        if value == value.to_integral_value():
            return int(value)
    number = float(value)
    return int(number) if number.is_integer() else number


#: Values with nothing inside and nothing to change by value: the exact types
#: (not subclasses) JSON gives for text, whole numbers, booleans and null.
_PLAIN = frozenset({str, int, bool, type(None)})


def _by_value(value: Any) -> Any:
    """`value` with every number in it (nested too) as `_number` gives it."""
    if type(value) in _PLAIN:
        return value  # spares the slow ABC checks below: most values are these
    if type(value) is float:
        return _number(value)
    if isinstance(value, Mapping):
        return {k: v if type(v) in _PLAIN else _by_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_by_value(v) for v in value]
    return _number(value)


def _has_whole_float(value: Any) -> bool:
    """Whether `value` holds a float or Decimal that equals an int (1100.0)."""
    if type(value) in _PLAIN:
        return False
    if type(value) is float:
        return value.is_integer()
    if isinstance(value, Mapping):
        return any(_has_whole_float(v) for v in value.values() if type(v) not in _PLAIN)
    if isinstance(value, list | tuple):
        return any(_has_whole_float(v) for v in value)
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, Decimal):
        return value.is_finite() and value == value.to_integral_value()
    return False


def _sha256(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(content)).hexdigest()


def _canonical(content: Mapping[str, Any]) -> bytes:
    """The canonical JSON of `content`: the text `json.dumps` writes, as bytes.

    orjson writes the same bytes ten times faster where it writes `content`
    alike (`_orjson_text`; a differential test in tests/fuzz holds the two
    to it); anything else is written by `json.dumps`, whose text is the rule.
    """
    text = _orjson_text(content, by_value=False) if type(content) is dict else None
    if text is not None:
        return text
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def _value_digest(content: Mapping[str, Any]) -> str:
    """`_sha256(_by_value(content))`: the digest of content, numbers by value.

    A flat object of text keys and JSON scalars (an event of most families)
    is turned by value and written by orjson (`_orjson_text`); anything
    else goes the general way.
    """
    text = _orjson_text(content, by_value=True) if type(content) is dict else None
    if text is None:
        return _sha256(_by_value(content))
    return hashlib.sha256(text).hexdigest()


#: The values of a flat object (`_orjson_text`).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _orjson_text(content: dict[Any, Any], *, by_value: bool) -> bytes | None:
    """The canonical text of flat `content` (`_by_value`'s), if orjson writes it.

    orjson writes it as `json.dumps` does, byte for byte, when its values
    are scalars, its floats are spelled as `repr` spells them (`1e16` is
    `1e+16` to Python) and its text is printable ASCII. The last is read
    off orjson's own output, in C: ASCII without a backslash (orjson
    escapes a quote, a backslash and control characters, and `json.dumps`
    the same ones alike) and without DEL (which `json.dumps` escapes and
    orjson does not); both then sort the keys alike. Integers beyond 64
    bits and keys that are not text orjson refuses. Else None.
    """
    kinds = set(map(type, content.values()))
    if not kinds <= _SCALARS:
        return None
    if float in kinds:
        turned = _floats_alike(content, by_value)
        if turned is None:
            return None
        content = turned
    try:
        text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None
    if text.isascii() and b"\\" not in text and b"\x7f" not in text:
        return text
    return None


def _floats_alike(content: dict[Any, Any], by_value: bool) -> dict[Any, Any] | None:
    """`content`, its integral floats as integers with `by_value`.

    None if orjson spells one of its other floats unlike `repr`.
    """
    turned = dict(content)
    for key, value in content.items():
        if type(value) is float:
            if by_value and value.is_integer():
                turned[key] = int(value)
            elif orjson.dumps(value) != repr(value).encode():
                return None
    return turned


def content_digest(event: Mapping[str, Any]) -> str:
    """Digest of an event's content: everything but `RESEND_FIELDS`.

    Numbers count by value: 1100 and 1100.0 are the same content (a producer
    may write a figure either way), so both hash alike. The canonical form
    (numbers by value, sorted keys, no spaces, ASCII) is the one stored in
    every table's `payload_sha256`.
    """
    return _value_digest(_content(event))


def _content(event: Mapping[str, Any]) -> dict[str, Any]:
    """What an event says, without when it was sent (`RESEND_FIELDS`)."""
    content = dict(event)  # copied in C: a comprehension took 5x as long
    for name in RESEND_FIELDS:
        content.pop(name, None)
    return content


def legacy_digest(event: Mapping[str, Any]) -> str:
    """The digest rows stored before numbers counted by value carry.

    It differs from `content_digest` only for an event with an integral
    float (1100.0): such a row, re-sent exactly as it was, is still a
    duplicate (`Identity.also`).
    """
    return _sha256(_content(event))


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
    return _sha256(canonical)


def moved_scope_issue(
    target_id: str, known_scope: str | None, scope: str
) -> FieldIssue | None:
    """Why a new version of `target_id` may not name `scope`, or None.

    `known_scope` is the scope of the versions already known (None for a
    new target). A target's scope never changes between versions.
    """
    if known_scope is None or known_scope == scope:
        return None
    return FieldIssue(
        "scope",
        f"target {target_id[:100]!r} belongs to scope {known_scope!r}; "
        f"a new version cannot move it to {scope[:100]!r}",
    )


def resend_id(event_id: str, reported_at: str) -> str:
    """The stored id of a re-sent fact's new report."""
    return f"{event_id}{RESEND_MARK}{reported_at}"


def origin_id(stored_id: str) -> str:
    """The event id a stored report came with (itself, or what was re-sent)."""
    return stored_id.split(RESEND_MARK, 1)[0]


class _Slotted(Protocol):
    @property
    def slot(self) -> Slot: ...  # pragma: no cover - a protocol

    @property
    def rank(self) -> Rank: ...  # pragma: no cover - a protocol


def fact_of(kind: str, event: Mapping[str, Any]) -> _Slotted | None:
    """The fact of a validated event, as its family's model (None for targets)."""
    build = _fact_builders().get(kind)
    return None if build is None else build(event)


@cache
def _fact_builders() -> dict[str, Callable[[Mapping[str, Any]], _Slotted]]:
    """Each family's model builder, imported once (not on every event)."""
    # Imported here: the family modules are pure too, but import much more.
    from klimapuls.core.fleet import FleetSnapshot
    from klimapuls.core.initiatives import StatusReport
    from klimapuls.core.mobility import MobilityCount
    from klimapuls.core.model import Co2Account

    return {
        "co2_account": lambda event: Co2Account.from_event(dict(event)),
        "fleet_status": FleetSnapshot.from_event,
        "mobility_count": MobilityCount.from_event,
        "initiative_status": StatusReport.from_event,
    }


@dataclass(frozen=True)
class Identity:
    """How a fact is known: its key, the event id that brought it, its digest.

    `slot` and `rank` (None for targets) say what the fact competes with and
    how it ranks there; `event_id` is the stored id (a `resend_id` for the
    new report of a re-sent fact).
    """

    key: FactKey
    event_id: str
    digest: str
    slot: Slot | None = None
    rank: Rank | None = None
    #: What the event says (without `RESEND_FIELDS`), kept for `also`; None
    #: for an identity built from a stored digest. Not part of the identity.
    content: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    #: The family model `slot` and `rank` come from (None for targets, and
    #: for identities built from a digest alone), handed on so storage need
    #: not build it again: a `MobilityCount` of a count; of a re-sent fact's
    #: new report, the one under its `resend_id`. Not part of the identity.
    fact: _Slotted | None = field(default=None, compare=False, repr=False)

    def same_content(self, other: Identity) -> bool:
        """Whether `other` (a known fact) has this content."""
        return other.digest == self.digest or other.digest == self.also

    @cached_property
    def also(self) -> str | None:
        """The legacy digest of this content (`legacy_digest`), if it differs.

        The digest a row stored before numbers counted by value carries.
        Worked out only when a known fact's digest differs from `digest`:
        a second digest per event is most of the cost of an identity.
        """
        if self.content is None or not _has_whole_float(self.content):
            return None
        legacy = _sha256(self.content)
        return None if legacy == self.digest else legacy

    @property
    def origin(self) -> str:
        """The event id the fact came with."""
        return origin_id(self.event_id)


def identity_of(kind: str, event: Mapping[str, Any]) -> Identity:
    """The identity of a validated event of `kind`."""
    event_id = str(event["event_id"])
    if kind == "target":
        key = ("target", str(event["target_id"]), str(event["version"]))
        return Identity(key, event_id, target_digest(event))
    fact = fact_of(kind, event)
    content = _content(event)
    # Every field set at once, past the frozen dataclass's field-by-field
    # `__init__` (see `MobilityCount.from_event`; one identity per event). A
    # test holds this to the fields.
    identity = object.__new__(Identity)
    identity.__dict__.update(
        key=(kind, event_id),
        event_id=event_id,
        digest=_value_digest(content),  # content_digest(event)
        slot=None if fact is None else fact.slot,
        rank=None if fact is None else fact.rank,
        content=content,
        fact=fact,
    )
    return identity


def stored_identity(kind: str, event_id: str, digest: str, fact: _Slotted) -> Identity:
    """The identity of a stored report (`fact` built from its row)."""
    return Identity((kind, event_id), event_id, digest, fact.slot, fact.rank, fact=fact)


@dataclass(frozen=True)
class Judgement:
    """The verdict on one event, with its identity and, if refused, why."""

    verdict: Verdict
    identity: Identity
    issue: FieldIssue | None = None

    @property
    def fact(self) -> _Slotted | None:
        """The judged fact as its family's model (`Identity.fact`), if built.

        For a `NEW` count, the `MobilityCount` to store: under its
        `identity.event_id`, a `resend_id` for a re-sent fact.
        """
        return self.identity.fact

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
    #: The current (highest-ranked) known report of every slot.
    current: dict[Slot, Identity] = field(default_factory=dict)
    #: The scope of every known target (targets only).
    scopes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        kind: str,
        known: Iterable[Identity],
        rivals: Iterable[Identity] = (),
        scopes: Mapping[str, str] | None = None,
    ) -> Ledger:
        """A ledger of `kind` that already knows `known` (e.g. stored rows).

        `rivals` are stored reports of the slots the events may compete in
        (storage loads them for re-sent facts); they only set `current`.
        `scopes` are the stored targets' scopes, by target id.
        """
        ledger = cls(kind, scopes=dict(scopes or {}))
        for identity in known:
            ledger.know(identity)
        for identity in rivals:
            ledger._rank(identity)
        return ledger

    def know(self, identity: Identity) -> None:
        """Record a fact as known."""
        self.by_key.setdefault(identity.key, identity)
        self.by_event_id.setdefault(identity.event_id, identity)
        self._rank(identity)

    def _rank(self, identity: Identity) -> None:
        if identity.slot is None or identity.rank is None:
            return
        seen = self.current.get(identity.slot)
        if seen is None or seen.rank is None or identity.rank > seen.rank:
            self.current[identity.slot] = identity

    def judge(
        self,
        event: Mapping[str, Any],
        admit: Admit | None = None,
        *,
        identity: Identity | None = None,
    ) -> Judgement:
        """New, duplicate or rejected; a new fact is recorded as known.

        `admit`, if given, sees every fact about to be recorded as new (a
        re-send winning back its slot under its stored id) and may refuse it
        with an issue (the fleet's bus register does); refused, it is not
        recorded, so the ledger stays as the stored rows are. `identity` is
        the event's `identity_of`, when the caller has it already.
        """
        if identity is None:
            identity = identity_of(self.kind, event)
        by_id = self.by_event_id.get(identity.event_id)
        if by_id is not None and by_id.key != identity.key:
            return Judgement(Verdict.REJECTED, identity, self._names_other(by_id))
        known = self.by_key.get(identity.key)
        if known is None:
            if self.kind == "target":
                target_id, scope = identity.key[1], str(event["scope"])
                moved = moved_scope_issue(target_id, self.scopes.get(target_id), scope)
                if moved is not None:
                    return Judgement(Verdict.REJECTED, identity, moved)
            refused = admit(event) if admit is not None else None
            if refused is not None:
                return Judgement(Verdict.REJECTED, identity, refused)
            if self.kind == "target":
                self.scopes.setdefault(target_id, scope)
            self.know(identity)
            return Judgement(Verdict.NEW, identity)
        if identity.same_content(known):
            return self._resent(event, identity, admit)
        return Judgement(Verdict.REJECTED, identity, self._differs(identity, known))

    def _resent(
        self, event: Mapping[str, Any], identity: Identity, admit: Admit | None
    ) -> Judgement:
        """A known fact again: a duplicate, unless it wins back its slot."""
        if identity.slot is None:
            return Judgement(Verdict.DUPLICATE, identity)
        stored_id = resend_id(identity.event_id, event["reported_at"])
        fact = fact_of(self.kind, {**event, "event_id": stored_id})
        current = self.current.get(identity.slot)
        if (
            fact is None
            or (self.kind, stored_id) in self.by_key  # this re-send, replayed
            or current is None
            or current.rank is None
            or current.origin == identity.event_id  # still current
            or not fact.rank > current.rank  # a higher revision stands
        ):
            return Judgement(Verdict.DUPLICATE, identity)
        again = stored_identity(self.kind, stored_id, identity.digest, fact)
        refused = admit({**event, "event_id": stored_id}) if admit else None
        if refused is not None:
            return Judgement(Verdict.REJECTED, identity, refused)
        self.know(again)
        return Judgement(Verdict.NEW, again)

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
