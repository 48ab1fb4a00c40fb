"""The alert state machine, routing to contacts and digests: pure functions.

`step` takes the open alerts, the conditions found now (`klimapuls.core.
alerting`), the acknowledgements given and "now", and decides every
transition; each transition that someone must hear of is one `Notice`:

- no alert, condition present: a new alert, `pending` since now;
- `pending`, still present for `hold`: `firing` (notice `firing`), unless
  the condition is inhibited (it stays pending and says by what);
- `pending`, gone: `cleared` without a word (a restatement and its
  correction within the hold time send nothing);
- `firing`/`acknowledged`, gone: `resolved` (notice `resolved`);
- `firing`/`acknowledged`, worse severity than last notified for `hold`
  (since `worse_since`): notice `worsened` (an acknowledged alert opens
  again); back to the notified severity within the hold sends nothing;
- `firing`, acknowledged after its last notice: `acknowledged` (escalation
  stops); an ack covers the notices sent up to it, so after a `worsened`
  notice an earlier ack no longer counts and a new one is needed;
- `firing`, not acknowledged for `escalate_after` since its last notice:
  notice `escalated` to the secretariat (once per notice: a `worsened`
  notice starts the count again).

Anything else (the same condition again, a restatement that moves no
severity, a replay) changes the stored figures at most, and sends nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from klimapuls.core.alerting import CONTACT_TOPICS, AlertRules, Condition
from klimapuls.core.errors import FieldIssue, KlimapulsError
from klimapuls.core.initiatives import SECRETARIAT_TOVHOLDER, known_tovholdere
from klimapuls.core.reference import municipalities

__all__ = [
    "CHANNELS",
    "OPEN_STATES",
    "Ack",
    "Alert",
    "Contact",
    "ContactError",
    "Delivery",
    "Notice",
    "Step",
    "contact",
    "digests",
    "message_key",
    "parse_contacts",
    "recipients",
    "route",
    "step",
]

AlertState = Literal["pending", "firing", "acknowledged", "resolved", "cleared"]
NoticeKind = Literal["firing", "worsened", "resolved", "escalated"]
#: States of an alert that is not over (one per key at a time).
OPEN_STATES: tuple[AlertState, ...] = ("pending", "firing", "acknowledged")
#: Channels a contact can be reached on.
CHANNELS = ("email", "webhook")

_SEVERITY_RANK = {"at_risk": 2, "off_track": 3}


def _rank(severity: str | None) -> int:
    return 0 if severity is None else _SEVERITY_RANK.get(severity, 1)


@dataclass(frozen=True)
class Alert:
    """An alert: a condition's life from first seen to resolved, keyed by `key`."""

    key: str
    rule: str
    subject: str
    scope: str
    period: str
    topic: str
    parties: tuple[str, ...]
    title: str
    state: AlertState
    severity: str
    since: datetime
    facts: Mapping[str, Any] = field(default_factory=dict)
    target_id: str | None = None
    initiative_id: str | None = None
    inhibited_by: str | None = None
    notified_severity: str | None = None
    notified_facts: Mapping[str, Any] | None = None
    fired_at: datetime | None = None
    notified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalated_at: datetime | None = None
    ended_at: datetime | None = None
    worse_since: datetime | None = None
    alert_id: int | None = None

    @classmethod
    def pending(cls, condition: Condition, now: datetime) -> Alert:
        """A new alert for `condition`, pending since `now`."""
        return cls(
            key=condition.key,
            rule=condition.rule,
            subject=condition.subject,
            scope=condition.scope,
            period=condition.period,
            topic=condition.topic,
            parties=condition.parties,
            title=condition.title,
            state="pending",
            severity=condition.severity,
            since=now,
            facts=condition.facts,
            target_id=condition.target_id,
            initiative_id=condition.initiative_id,
            inhibited_by=condition.inhibited_by,
        )

    def seen(self, condition: Condition) -> Alert:
        """The alert with the condition's current figures and routing."""
        return replace(
            self,
            severity=condition.severity,
            facts=condition.facts,
            parties=condition.parties,
            title=condition.title,
            inhibited_by=condition.inhibited_by,
        )


@dataclass(frozen=True)
class Notice:
    """One transition someone must hear of, with the figures before and now."""

    alert: Alert
    kind: NoticeKind
    parties: tuple[str, ...]
    previous_facts: Mapping[str, Any] | None = None
    previous_severity: str | None = None


@dataclass(frozen=True)
class Ack:
    """An acknowledgement of an alert (by its id), by someone, at a time."""

    alert_id: int
    at: datetime
    by: str


@dataclass(frozen=True)
class Step:
    """What one evaluation decided: alerts to write, notices to send."""

    alerts: list[Alert]
    notices: list[Notice]


def _notify(
    alert: Alert, kind: NoticeKind, parties: tuple[str, ...]
) -> tuple[Alert, Notice]:
    notice = Notice(alert, kind, parties, alert.notified_facts, alert.notified_severity)
    return (
        replace(alert, notified_severity=alert.severity, notified_facts=alert.facts),
        notice,
    )


def _fire(alert: Alert, now: datetime) -> tuple[Alert, Notice]:
    fired = replace(alert, state="firing", fired_at=now, notified_at=now)
    return _notify(fired, "firing", alert.parties)


def _covers(ack: Ack, alert: Alert) -> bool:
    """An ack covers the notices sent up to it, not a later one."""
    return alert.notified_at is None or ack.at >= alert.notified_at


def _advance(
    alert: Alert,
    condition: Condition | None,
    ack: Ack | None,
    now: datetime,
    rules: AlertRules,
) -> tuple[Alert | None, list[Notice]]:
    """One alert's transition; (None, []) when nothing changes."""
    if alert.state == "pending":
        if condition is None:
            return replace(alert, state="cleared", ended_at=now), []
        current = alert.seen(condition)
        if current.inhibited_by is None and now - alert.since >= rules.hold:
            fired, notice = _fire(current, now)
            return fired, [notice]
        return (current if current != alert else None), []
    if condition is None:
        ended = replace(alert, state="resolved", ended_at=now)
        notice = Notice(
            ended,
            "resolved",
            alert.parties,
            alert.notified_facts,
            alert.notified_severity,
        )
        return ended, [notice]
    current = alert.seen(condition)
    notices: list[Notice] = []
    if ack is not None and current.state == "firing" and _covers(ack, current):
        current = replace(
            current,
            state="acknowledged",
            acknowledged_at=ack.at,
            acknowledged_by=ack.by,
        )
    held_back = current.inhibited_by is not None
    worse = _rank(current.severity) > _rank(current.notified_severity)
    # A worse severity must hold too: a restatement and its correction within
    # the hold time send nothing.
    if not worse:
        current = replace(current, worse_since=None)
    elif current.worse_since is None:
        current = replace(current, worse_since=now)
    if (
        not held_back
        and worse
        and current.worse_since is not None
        and now - current.worse_since >= rules.hold
    ):
        current = replace(
            current,
            state="firing",
            notified_at=now,
            acknowledged_at=None,
            acknowledged_by=None,
            escalated_at=None,
            worse_since=None,
        )
        current, notice = _notify(current, "worsened", current.parties)
        notices.append(notice)
    elif (
        not held_back
        and current.state == "firing"
        and current.escalated_at is None
        and current.notified_at is not None
        and now - current.notified_at >= rules.escalate_after
    ):
        current = replace(current, escalated_at=now)
        notices.append(
            Notice(
                current,
                "escalated",
                (SECRETARIAT_TOVHOLDER,),
                current.notified_facts,
                current.notified_severity,
            )
        )
    return (current if current != alert or notices else None), notices


def step(
    open_alerts: Iterable[Alert],
    conditions: Iterable[Condition],
    acks: Iterable[Ack],
    now: datetime,
    rules: AlertRules,
) -> Step:
    """Every transition of this evaluation (see the module docstring)."""
    by_key = {a.key: a for a in open_alerts}
    present = {c.key: c for c in conditions}
    given = {a.alert_id: a for a in acks}
    changed: list[Alert] = []
    notices: list[Notice] = []
    for key in sorted(by_key.keys() | present.keys()):
        alert = by_key.get(key)
        condition = present.get(key)
        fresh = alert is None
        if alert is None:
            if condition is None:
                continue
            alert = Alert.pending(condition, now)
        ack = given.get(alert.alert_id) if alert.alert_id is not None else None
        result, said = _advance(alert, condition, ack, now, rules)
        if result is None and fresh:
            result = alert
        if result is not None:
            changed.append(result)
        notices.extend(said)
    return Step(changed, notices)


# --- Contacts and routing -------------------------------------------------------


class ContactError(KlimapulsError):
    """A contact (from the CLI or a YAML file) is not usable; names the field."""

    def __init__(self, issues: Sequence[FieldIssue]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(f"{i.field}: {i.reason}" for i in self.issues))


@dataclass(frozen=True)
class Contact:
    """Someone who hears of a party's alerts on a topic, by e-mail or webhook.

    `party` is a tovholder name: a municipality, `Region Hovedstaden` (the
    regional coordinators) or `Klimaalliancen` (the secretariat).
    """

    name: str
    party: str
    topic: str
    channel: str
    address: str
    contact_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON form (CLI output)."""
        return {
            "name": self.name,
            "party": self.party,
            "topic": self.topic,
            "channel": self.channel,
            "address": self.address,
        }


def _party(value: Any, where: str) -> str:
    codes = {m.code: m.name for m in municipalities()}
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ContactError([FieldIssue(f"{where}party", "is required")])
    value = codes.get(value.strip(), value.strip())
    if value not in known_tovholdere():
        raise ContactError(
            [
                FieldIssue(
                    f"{where}party",
                    f"{value!r} is not a municipality of the region (name or "
                    "kommune code), 'Region Hovedstaden' or 'Klimaalliancen'",
                )
            ]
        )
    return str(value)


def _address(channel: str, address: Any, where: str) -> str:
    if not isinstance(address, str) or not address.strip():
        raise ContactError([FieldIssue(f"{where}{channel}", "is required")])
    address = address.strip()
    if channel == "email" and ("@" not in address or " " in address):
        raise ContactError(
            [FieldIssue(f"{where}email", f"{address!r} is not an e-mail address")]
        )
    if channel == "webhook" and not address.startswith(("http://", "https://")):
        raise ContactError(
            [FieldIssue(f"{where}webhook", f"{address!r} is not an http(s) URL")]
        )
    return address


def contact(
    name: str, party: Any, topic: str, channel: str, address: Any, where: str = ""
) -> Contact:
    """A checked contact; `ContactError` names the field that is wrong."""
    if not isinstance(name, str) or not name.strip():
        raise ContactError([FieldIssue(f"{where}name", "is required")])
    if topic not in CONTACT_TOPICS:
        raise ContactError(
            [
                FieldIssue(
                    f"{where}topics",
                    f"{topic!r} is not a topic; one of {', '.join(CONTACT_TOPICS)}",
                )
            ]
        )
    if channel not in CHANNELS:
        raise ContactError(
            [FieldIssue(f"{where}channel", f"one of {', '.join(CHANNELS)}")]
        )
    return Contact(
        name.strip(),
        _party(party, where),
        topic,
        channel,
        _address(channel, address, where),
    )


def parse_contacts(data: Any) -> list[Contact]:
    """Contacts from a parsed YAML document (`contacts:` list; see the README).

    Each entry has `name`, `party`, `topics` (a list, or one topic) and an
    `email` and/or a `webhook`; it gives one contact per topic and channel.
    """
    entries = data.get("contacts") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ContactError([FieldIssue("contacts", "must be a list of contacts")])
    found: list[Contact] = []
    for n, entry in enumerate(entries):
        where = f"contacts.{n}."
        if not isinstance(entry, dict):
            raise ContactError([FieldIssue(f"contacts.{n}", "must be a mapping")])
        topics = entry.get("topics", entry.get("topic", "all"))
        topics = [topics] if isinstance(topics, str) else topics
        if not isinstance(topics, list) or not topics:
            raise ContactError([FieldIssue(f"{where}topics", "must list topics")])
        channels = [c for c in CHANNELS if c in entry]
        if not channels:
            raise ContactError(
                [FieldIssue(f"{where}email", "give an email or a webhook")]
            )
        for topic in topics:
            for channel in channels:
                found.append(
                    contact(
                        entry.get("name"),  # type: ignore[arg-type]
                        entry.get("party"),
                        str(topic),
                        channel,
                        entry.get(channel),
                        where,
                    )
                )
    return found


def route(
    notices: Iterable[tuple[int, Notice]], contacts: Sequence[Contact]
) -> list[tuple[int, Contact]]:
    """(notice id, contact) for every contact that must hear of each notice."""
    return [
        (notice_id, person)
        for notice_id, notice in notices
        for person in recipients(notice.parties, notice.alert.topic, contacts)
    ]


def recipients(
    parties: Iterable[str], topic: str, contacts: Iterable[Contact]
) -> list[Contact]:
    """The contacts of these parties that take `topic` (or `all`), sorted."""
    wanted = set(parties)
    chosen = {
        (c.party, c.channel, c.address): c
        for c in contacts
        if c.party in wanted and c.topic in (topic, "all")
    }
    return [chosen[k] for k in sorted(chosen)]


# --- Deliveries and digests -------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One notice for one recipient on one channel, waiting to be sent."""

    delivery_id: int
    notice_id: int
    channel: str
    address: str
    recipient: str
    created_at: datetime


def digests(
    pending: Iterable[Delivery], now: datetime, rules: AlertRules
) -> list[list[Delivery]]:
    """Group pending deliveries by recipient into messages that are due.

    A recipient's deliveries go out together once the oldest of them has
    waited `digest_window`: several alerts within the window are one digest.
    """
    groups: dict[tuple[str, str], list[Delivery]] = {}
    for d in pending:
        groups.setdefault((d.channel, d.address), []).append(d)
    due = []
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda d: d.delivery_id)
        if now - min(d.created_at for d in group) >= rules.digest_window:
            due.append(group)
    return due


def message_key(channel: str, address: str, delivery_ids: Iterable[int]) -> str:
    """The stable key of one message: the same deliveries give the same key.

    Receivers may drop a message whose key they saw (the one repeat possible:
    a sender killed between sending and marking it sent).
    """
    ids = ",".join(str(i) for i in sorted(delivery_ids))
    digest = hashlib.sha256(f"{channel}|{address}|{ids}".encode()).hexdigest()
    return f"klimapuls-{digest[:32]}"
