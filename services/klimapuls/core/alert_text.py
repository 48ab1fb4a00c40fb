"""Notices as people read them: Danish e-mail text and a webhook body.

Pure rendering: a stored notice record (`notice_record`) and a recipient in,
an `OutgoingMessage` out. One message may carry several notices (a digest).
Every message names its key (`message_key`) and the alert keys it carries,
so a receiver can drop the one repeat a crash can cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from klimapuls.core.alert_state import Notice
from klimapuls.core.alerting import (
    FEED_CO2,
    FEED_FLEET,
    FEED_SITE,
    RULE_DEAD_LETTERS,
    RULE_FEED_STALE,
    RULE_FORECAST,
    RULE_MISSING_REPORT,
    RULE_NO_TOVHOLDER,
    RULE_TARGET_STATUS,
)
from klimapuls.core.model import TONNES_CO2E
from klimapuls.core.reference import municipalities

__all__ = [
    "KIND_LABEL",
    "STATUS_LABEL",
    "OutgoingMessage",
    "board_link",
    "danish_number",
    "new_restatements",
    "notice_record",
    "render_message",
]

STATUS_LABEL = {
    "no_data": "ingen data",
    "achieved": "nået",
    "on_track": "på sporet",
    "at_risk": "i fare",
    "off_track": "ikke på sporet",
}
KIND_LABEL = {
    "firing": "Ny advarsel",
    "worsened": "Forværret",
    "resolved": "Løst",
    "escalated": "Eskaleret: ikke kvitteret",
}
#: Grafana board uids (`grafana/dashboards/`).
BOARD_CO2 = "klimapuls-co2"
BOARD_KOMMUNE = "klimapuls-kommune"
BOARD_FLEET = "klimapuls-fleet"
BOARD_MOBILITY = "klimapuls-mobility"
BOARD_INITIATIVES = "klimapuls-initiatives"
BOARD_OPERATIONS = "klimapuls-operations"
_TOPIC_BOARD = {
    "co2": BOARD_CO2,
    "fleet": BOARD_FLEET,
    "mobility": BOARD_MOBILITY,
    "initiatives": BOARD_INITIATIVES,
    "operations": BOARD_OPERATIONS,
}
_FEED_BOARD = {
    FEED_CO2: BOARD_KOMMUNE,
    FEED_FLEET: BOARD_FLEET,
    FEED_SITE: BOARD_MOBILITY,
}


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one recipient on one channel, ready to send."""

    key: str
    channel: str
    address: str
    recipient: str
    subject: str
    text: str
    alert_keys: tuple[str, ...]
    payload: Mapping[str, Any] = field(default_factory=dict)


def notice_record(notice: Notice) -> dict[str, Any]:
    """What a notice's message needs, as stored JSON."""
    alert = notice.alert
    return {
        "alert_id": alert.alert_id,
        "key": alert.key,
        "kind": notice.kind,
        "rule": alert.rule,
        "scope": alert.scope,
        "title": alert.title,
        "topic": alert.topic,
        "severity": alert.severity,
        "previous_severity": notice.previous_severity,
        "since": alert.since.isoformat(),
        "facts": dict(alert.facts),
        "previous_facts": (
            dict(notice.previous_facts) if notice.previous_facts is not None else None
        ),
        "target_id": alert.target_id,
        "initiative_id": alert.initiative_id,
        "parties": list(notice.parties),
    }


def danish_number(value: float, decimals: int = 0) -> str:
    """`1234567.5` as `1.234.568` (Danish grouping and decimal comma)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def _value(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "%":
        return f"{danish_number(float(value), 1)} %"
    if unit == TONNES_CO2E:
        return f"{danish_number(float(value))} t CO2e"
    return f"{danish_number(float(value))} {unit}".strip()


def _scope(record: Mapping[str, Any]) -> str:
    # Records stored before `scope` was added: the key is rule:subject:scope:period.
    scope = record.get("scope")
    return str(scope) if scope is not None else str(record["key"]).rsplit(":", 2)[1]


def board_link(base: str, record: Mapping[str, Any]) -> str:
    """The Grafana board of a notice's alert, under the configured base URL.

    A municipality's own target (or its CO2 account) -> its municipality
    board; fleet feeds -> the fleet board, counting sites -> the mobility
    board; initiatives -> the initiatives board; dead letters -> operations;
    regional and other targets -> the board of their topic (CO2: overview).
    """
    rule = str(record["rule"])
    scope = _scope(record)
    municipal = scope in {m.code for m in municipalities()}
    uid = _TOPIC_BOARD.get(str(record.get("topic")), BOARD_CO2)
    if rule in (RULE_MISSING_REPORT, RULE_NO_TOVHOLDER):
        uid = BOARD_INITIATIVES
    elif rule == RULE_DEAD_LETTERS:
        uid = BOARD_OPERATIONS
    elif rule == RULE_FEED_STALE:
        uid = _FEED_BOARD.get(str(record["facts"].get("family")), uid)
    elif rule in (RULE_TARGET_STATUS, RULE_FORECAST) and municipal:
        uid = BOARD_KOMMUNE
    link = f"{base.rstrip('/')}/d/{uid}"
    if uid == BOARD_KOMMUNE and municipal:
        link += f"?var-kommune={scope}"
    return link


def _changes(record: Mapping[str, Any]) -> str:
    before = record.get("previous_facts")
    if before is None:
        return "første besked om dette forhold"
    facts = record["facts"]
    unit = str(facts.get("unit") or "")
    parts = []
    if before.get("status") != facts.get("status") and "status" in facts:
        parts.append(
            f"status {STATUS_LABEL.get(before.get('status'), before.get('status'))}"
            f" -> {STATUS_LABEL.get(facts['status'], facts['status'])}"
        )
    for name, label in (
        ("latest_value", "seneste værdi"),
        ("forecast_value", "prognose"),
        ("path_value", "sti"),
    ):
        if name in facts and before.get(name) != facts.get(name):
            parts.append(
                f"{label} {_value(before.get(name), unit)} -> "
                f"{_value(facts.get(name), unit)}"
            )
    if before.get("latest_year") != facts.get("latest_year") and "latest_year" in facts:
        parts.append(
            f"seneste år {before.get('latest_year')} -> {facts['latest_year']}"
        )
    if record["kind"] == "resolved":
        parts.insert(0, "forholdet er ikke længere til stede")
    return "; ".join(parts) or "ingen ændring i tallene"


def _restatement_id(item: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        item.get(k)
        for k in (
            "family",
            "restated_at",
            "scope",
            "period",
            "sector",
            "detail",
            "producer",
        )
    )


def new_restatements(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The restatements a notice carries that its previous notice did not.

    A target alert's `facts["restatements"]` lists the restated figures of
    its series within the window (`klimapuls.core.alerting.restatements_of`);
    a notice names those since the previous notice, a first notice all.
    """
    listed = record["facts"].get("restatements") or []
    before = record.get("previous_facts") or {}
    told = {_restatement_id(r) for r in before.get("restatements") or []}
    return [r for r in listed if _restatement_id(r) not in told]


def _restatement_line(item: Mapping[str, Any]) -> str:
    """`Rettet: 2021 fra 700 til 728 t CO2e (+4,0 %), årgang A -> B`."""
    unit = str(item.get("unit") or "")
    line = (
        f"Rettet: {item.get('period') or item.get('year')} fra "
        f"{danish_number(float(item['old_value']), 1 if unit == '%' else 0)} til "
        f"{_value(item['new_value'], unit)}"
    )
    pct = item.get("change_pct")
    if pct is not None:
        sign = "+" if pct >= 0 else "-"
        line += f" ({sign}{danish_number(abs(float(pct)), 1)} %)"
    if item.get("old_vintage") or item.get("new_vintage"):
        line += (
            f", årgang {item.get('old_vintage') or '–'} -> "
            f"{item.get('new_vintage') or '–'}"
        )
    where = [str(item[k]) for k in ("sector", "detail") if item.get(k)]
    if item.get("scope"):
        where.insert(0, str(item["scope"]))
    line += f" ({', '.join(where)}; fra {item.get('producer')})"
    return line


def _target_lines(record: Mapping[str, Any]) -> list[str]:
    f = record["facts"]
    unit = str(f.get("unit") or "")
    status = f.get("status")
    lines = [f"Status: {STATUS_LABEL.get(status, status)} ({status})"]
    if f.get("previous_status"):
        previous = f["previous_status"]
        lines[0] += f", før: {STATUS_LABEL.get(previous, previous)}"
    if f.get("stale"):
        lines.append("Bemærk: de seneste tal er mere end 2 år gamle")
    if f.get("latest_year") is not None:
        vintage = f" (årgang {f['vintage']})" if f.get("vintage") else ""
        lines.append(
            f"Seneste værdi: {_value(f.get('latest_value'), unit)} "
            f"i {f['latest_year']}{vintage}"
        )
        lines.append(f"Stien i {f['latest_year']}: {_value(f.get('path_value'), unit)}")
    if f.get("target_year") is not None:
        lines.append(
            f"Prognose for {f['target_year']}: "
            f"{_value(f.get('forecast_value'), unit)} "
            f"(mål: {_value(f.get('target_value'), unit)})"
        )
    if f.get("forecast_reference") is not None:
        lines.append(
            f"Prognosen før forværringen: {_value(f['forecast_reference'], unit)}"
        )
    required = f.get("required_annual_reduction")
    if required is not None:
        word = "reduktion" if required >= 0 else "stigning"
        lines.append(
            f"Påkrævet årlig {word}: {_value(abs(float(required)), unit)} om året"
        )
    if record["kind"] != "resolved":
        lines.extend(_restatement_line(r) for r in new_restatements(record))
    lines.append(f"Mål: {f['target_id']}, version {f['version']}")
    return lines


def _other_lines(record: Mapping[str, Any]) -> list[str]:
    f = record["facts"]
    rule = record["rule"]
    if rule == RULE_FEED_STALE:
        seen = f.get("last_year") or str(f.get("last_seen", ""))[:10]
        lines = [f"Senest leveret: {seen}"]
        if f.get("holds_back"):
            lines.append(
                "Holder disse advarsler tilbage, til data er opdateret: "
                + ", ".join(f["holds_back"])
            )
        return lines
    if rule == RULE_MISSING_REPORT:
        who = ", ".join(f.get("tovholdere") or []) or "ingen"
        return [f"Runde: {f['round']}", f"Tovholdere: {who}"]
    if rule == RULE_NO_TOVHOLDER:
        return [f"Program: {f['programme']}", "Der er ingen tovholder tilknyttet"]
    if rule == RULE_DEAD_LETTERS:
        return [
            f"Afviste: {f['rejected']} af {f['rejected'] + f['accepted']} "
            f"({danish_number(float(f['rate_pct']), 1)} %, grænse "
            f"{danish_number(float(f['threshold_pct']), 1)} %)"
        ]
    return []


def _block(record: Mapping[str, Any], board_url: str) -> str:
    head = f"{KIND_LABEL[record['kind']]}: {record['title']}"
    if record["rule"] in (RULE_TARGET_STATUS, RULE_FORECAST):
        lines = _target_lines(record)
    else:
        lines = _other_lines(record)
    lines.append(f"Siden sidste besked: {_changes(record)}")
    lines.append(f"Tavle: {board_link(board_url, record)}")
    ack = ""
    if record.get("alert_id") is not None and record["kind"] != "resolved":
        ack = f" (kvittér: klimapuls alerts ack {record['alert_id']})"
    lines.append(f"Nøgle: {record['key']}{ack}")
    return "\n".join([head, *(f"  {line}" for line in lines)])


def _subject(records: Sequence[Mapping[str, Any]]) -> str:
    if len(records) == 1:
        r = records[0]
        return f"[Klimapuls] {KIND_LABEL[r['kind']]}: {r['title']}"
    return f"[Klimapuls] {len(records)} beskeder om klimamål og data"


def render_message(
    records: Sequence[Mapping[str, Any]],
    *,
    key: str,
    channel: str,
    address: str,
    recipient: str,
    board_url: str,
) -> OutgoingMessage:
    """The message (a digest when several records) for one recipient."""
    intro = (
        f"Til {recipient}\n\nKlimapuls har {len(records)} "
        f"{'besked' if len(records) == 1 else 'beskeder'} til dig:\n"
    )
    blocks = [_block(r, board_url) for r in records]
    footer = (
        "\n-- \nSendt af Klimapuls (Region Hovedstaden). Tal og mål markeret "
        '"syntetisk" er demodata, ikke rigtige tal.\n'
        f"Beskednøgle: {key}\n"
    )
    text = intro + "\n" + "\n\n".join(blocks) + "\n" + footer
    subject = _subject(records)
    alert_keys = tuple(str(r["key"]) for r in records)
    payload = {
        # Slack and Teams (MessageCard) both read these top-level fields.
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": subject,
        "title": subject,
        "text": text,
        "klimapuls": {
            "message_key": key,
            "alerts": [
                {
                    "key": r["key"],
                    "kind": r["kind"],
                    "rule": r["rule"],
                    "alert_id": r.get("alert_id"),
                    "title": r["title"],
                    "severity": r["severity"],
                    "facts": r["facts"],
                    "link": board_link(board_url, r),
                }
                for r in records
            ],
        },
    }
    return OutgoingMessage(
        key, channel, address, recipient, subject, text, alert_keys, payload
    )
