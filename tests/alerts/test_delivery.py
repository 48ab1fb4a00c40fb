"""Alerts end to end at handler level: real PostgreSQL, real SMTP, real HTTP.

The co2, targets and alerts handlers run on one database and one clock; the
sender talks to an aiosmtpd server and a local HTTP server in this process.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.alerts.handlers import AlertSender
from klimapuls.core.alert_state import Contact
from klimapuls.core.alert_text import OutgoingMessage
from klimapuls.storage import contacts
from klimapuls.storage.db import in_transaction
from tests.alerts.conftest import (
    Pipeline,
    WebhookServer,
    add_contacts,
    status_messages,
)
from tests.helpers import co2_event, rows, scalar, target_event

BALLERUP_MAIL = "klima@ballerup.example.org"
KBH_MAIL = "klima@kk.example.org"
SECRETARIAT_MAIL = "sekretariat@klimaalliancen.example.org"

#: Ballerup's emissions fall too slowly for -70 % by 2030: off track.
SLIPPING = {1990: 1000.0, 2020: 700.0, 2021: 690.0, 2022: 680.0, 2023: 670.0}
#: København's fall fast enough: on track (path 422.5 in 2023, forecast < 300).
ON_TRACK = {1990: 1000.0, 2020: 450.0, 2021: 430.0, 2022: 410.0, 2023: 400.0}


def _accounts(code: str, series: dict[int, float]) -> list[dict[str, Any]]:
    return [co2_event(code, year, "energy", t) for year, t in series.items()]


def _dk2020(code: str, name: str) -> dict[str, Any]:
    return target_event(
        f"dk2020-{code}-2030",
        scope=code,
        reduction_pct=70,
        name=f"{name}: CO2e -70 % i 2030 (syntetisk)",
    )


def _contacts(engine: Engine, webhook: WebhookServer) -> None:
    add_contacts(
        engine,
        Contact("Klimakoordinator Ballerup", "Ballerup", "co2", "email", BALLERUP_MAIL),
        Contact("Ballerup kanal", "Ballerup", "co2", "webhook", webhook.url),
        Contact("Klimakoordinator København", "København", "co2", "email", KBH_MAIL),
        # Topic co2 only: the seed data's initiatives without a tovholder
        # (topic initiatives) alert the secretariat too.
        Contact("Sekretariatet", "Klimaalliancen", "co2", "email", SECRETARIAT_MAIL),
    )


def _slip(p: Pipeline) -> None:
    changes = p.accounts(*_accounts("151", SLIPPING), *_accounts("101", ON_TRACK))
    changes += p.targets(_dk2020("151", "Ballerup"), _dk2020("101", "København"))
    p.evaluate(changes)


def test_a_slipping_target_sends_exactly_one_mail_to_its_municipality(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    _slip(pipeline)
    report = pipeline.send()
    assert report.failed == 0
    [mail] = pipeline.smtp.to(BALLERUP_MAIL)
    assert pipeline.smtp.to(KBH_MAIL) == []  # København is on track: nothing
    key = "target_status:dk2020-151-2030:151:2030"
    assert mail["X-Klimapuls-Alert-Key"] == key
    assert mail["Message-ID"] == f"<{mail['X-Klimapuls-Message-Key']}@klimapuls>"
    text = mail.get_content()
    assert "Ny advarsel: Klimamål skrider: Ballerup" in mail["Subject"]
    for expected in (
        "Status: ikke på sporet (off_track)",
        "Seneste værdi: 670 t CO2e i 2023 (årgang 2024-05-01)",
        "Stien i 2023: 422 t CO2e",
        "Prognose for 2030: 600 t CO2e (mål: 300 t CO2e)",
        "Påkrævet årlig reduktion: 53 t CO2e om året",
        "første besked",
        "https://grafana.example.org/d/klimapuls-kommune?var-kommune=151",
    ):
        assert expected in text, text
    [(headers, body)] = webhook.received
    assert headers["X-Klimapuls-Alert-Key"] == key
    assert body["klimapuls"]["alerts"][0]["key"] == key and body["text"]
    # Sent once: another round, or a refresh, sends nothing more.
    pipeline.later(minutes=5)
    pipeline.evaluate()
    assert pipeline.send().sent == 0
    assert len(pipeline.smtp.to(BALLERUP_MAIL)) == 1 and len(webhook.received) == 1
    sent = rows(engine, "SELECT * FROM board.alerts_sent ORDER BY channel")
    assert [(r["alert_key"], r["recipient"], r["channel"]) for r in sent] == [
        (key, "Klimakoordinator Ballerup", "email"),
        (key, "Ballerup kanal", "webhook"),
    ]


def test_a_channel_down_then_up_delivers_once(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    pipeline.smtp.down()
    webhook.status = 503
    _slip(pipeline)
    report = pipeline.send()
    assert (report.sent, report.failed) == (0, 2)
    pipeline.later(seconds=0.5)
    assert pipeline.send().failed == 0  # backing off: not due yet
    pipeline.smtp.up()
    webhook.status = 200
    pipeline.later(seconds=10)
    assert pipeline.send().sent == 2
    pipeline.later(minutes=10)
    pipeline.evaluate()
    assert pipeline.send().sent == 0
    assert len(pipeline.smtp.to(BALLERUP_MAIL)) == 1
    assert len(webhook.received) == 1
    attempts = scalar(engine, "SELECT max(attempts) FROM alert_message")
    assert attempts == 2


def test_a_restart_while_the_channel_is_down_does_not_repeat_the_mail(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    pipeline.smtp.down()
    _slip(pipeline)
    assert pipeline.send().failed >= 1
    restarted = pipeline.restart()  # new handler and sender, same database
    pipeline.smtp.up()
    restarted.later(minutes=5)
    restarted.evaluate()
    restarted.send()
    again = restarted.restart()
    again.later(minutes=5)
    again.evaluate()
    again.send()
    assert len(pipeline.smtp.to(BALLERUP_MAIL)) == 1


def test_a_permanent_smtp_refusal_is_tried_a_bounded_number_of_times_then_failed(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    from klimapuls.cli.alerts import database_alerts

    add_contacts(
        engine,
        Contact("Klimakoordinator Ballerup", "Ballerup", "co2", "email", BALLERUP_MAIL),
    )
    pipeline.smtp.inbox.refuse[BALLERUP_MAIL] = "550 5.1.1 mailbox unavailable"
    _slip(pipeline)
    reports = []
    for _ in range(10):  # far more rounds than attempts
        reports.append(pipeline.send())
        pipeline.later(minutes=15)
    assert sum(r.failed for r in reports) == 3  # bounded attempts ...
    assert sum(r.given_up for r in reports) == 1  # ... then given up, once
    [message] = rows(engine, "SELECT * FROM alert_message")
    assert (message["state"], message["attempts"]) == ("failed", 3)
    assert "550" in message["last_error"]
    assert pipeline.smtp.mails == []
    [row] = [r for r in database_alerts(engine) if r["target_id"] == "dk2020-151-2030"]
    [heard] = row["notified"]
    assert "failed" in heard and "550" in heard
    from rich.console import Console

    from klimapuls.cli.alerts import _table

    screen = Console(record=True, width=300)
    screen.print(_table([row], "Alerts"))
    assert "failed: SMTP" in screen.export_text()  # `alerts list` shows why


def test_a_temporary_smtp_refusal_keeps_retrying_with_backoff(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    add_contacts(
        engine,
        Contact("Klimakoordinator Ballerup", "Ballerup", "co2", "email", BALLERUP_MAIL),
    )
    pipeline.smtp.inbox.refuse[BALLERUP_MAIL] = "450 4.2.1 try again later"
    _slip(pipeline)
    for _ in range(6):
        assert pipeline.send().given_up == 0
        pipeline.later(minutes=15)
    assert scalar(engine, "SELECT state FROM alert_message") == "pending"
    assert scalar(engine, "SELECT attempts FROM alert_message") == 6
    del pipeline.smtp.inbox.refuse[BALLERUP_MAIL]
    assert pipeline.send().sent == 1
    assert len(pipeline.smtp.to(BALLERUP_MAIL)) == 1


def _webhook_only(engine: Engine, webhook: WebhookServer) -> None:
    add_contacts(
        engine, Contact("Ballerup kanal", "Ballerup", "co2", "webhook", webhook.url)
    )


@pytest.mark.parametrize(
    ("status", "reason"), [(400, "Bad Request"), (404, "Not Found"), (410, "Gone")]
)
def test_a_webhook_refusing_for_good_is_tried_a_bounded_number_of_times_then_failed(
    status: int,
    reason: str,
    pipeline: Pipeline,
    engine: Engine,
    webhook: WebhookServer,
) -> None:
    from klimapuls.cli.alerts import database_alerts

    _webhook_only(engine, webhook)
    webhook.status, webhook.refusal = status, "channel_is_archived"
    _slip(pipeline)
    reports = []
    for _ in range(10):  # far more rounds than attempts
        reports.append(pipeline.send())
        pipeline.later(minutes=15)
    assert webhook.posts == 3  # bounded attempts ...
    assert sum(r.failed for r in reports) == 3
    assert sum(r.given_up for r in reports) == 1  # ... then given up, once
    [message] = rows(engine, "SELECT * FROM alert_message")
    assert (message["state"], message["attempts"]) == ("failed", 3)
    assert f"HTTP {status} {reason}: channel_is_archived" in message["last_error"]
    [row] = [r for r in database_alerts(engine) if r["target_id"] == "dk2020-151-2030"]
    [heard] = row["notified"]
    assert "failed" in heard and f"HTTP {status} {reason}" in heard


@pytest.mark.parametrize("status", [503, 500, 408, 429])
def test_a_webhook_away_or_busy_keeps_retrying_with_backoff_then_delivers_once(
    status: int, pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _webhook_only(engine, webhook)
    webhook.status = status
    _slip(pipeline)
    for _ in range(6):
        assert pipeline.send().given_up == 0
        pipeline.later(minutes=15)
    assert scalar(engine, "SELECT state FROM alert_message") == "pending"
    assert scalar(engine, "SELECT attempts FROM alert_message") == 6
    assert f"HTTP {status}" in scalar(engine, "SELECT last_error FROM alert_message")
    pipeline.later(seconds=1)
    webhook.status = 200
    assert pipeline.send().sent == 1
    pipeline.later(minutes=15)
    assert pipeline.send().sent == 0
    assert len(webhook.received) == 1 and webhook.posts == 7
    assert scalar(engine, "SELECT state FROM alert_message") == "sent"


class _CrashAfterSending:
    """Sends, then dies before the sender can mark the message sent."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def send(self, message: OutgoingMessage) -> None:
        self.real.send(message)
        raise SystemExit("killed between sent and marked")


def test_a_sender_killed_between_sent_and_marked_repeats_it_under_the_same_key(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    add_contacts(
        engine,
        Contact("Klimakoordinator Ballerup", "Ballerup", "co2", "email", BALLERUP_MAIL),
    )
    _slip(pipeline)
    sender = pipeline.sender
    dying = AlertSender(
        engine,
        pipeline.clock,
        {"email": _CrashAfterSending(sender.channels["email"])},
        pipeline.rules,
        "https://grafana.example.org",
    )
    with pytest.raises(SystemExit):
        dying.send_due()
    pipeline.restart().send()
    first, second = pipeline.smtp.to(BALLERUP_MAIL)
    # The one repeat there can be carries the same key: a receiver drops it.
    assert first["Message-ID"] == second["Message-ID"]
    assert first["X-Klimapuls-Message-Key"] == second["X-Klimapuls-Message-Key"]
    assert scalar(engine, "SELECT count(*) FROM alert_message") == 1


def test_a_restatement_and_its_correction_within_the_hold_time_send_nothing(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    p = replace(pipeline, rules=replace(pipeline.rules, hold=timedelta(hours=1)))
    changes = p.accounts(*_accounts("101", ON_TRACK))
    changes += p.targets(_dk2020("101", "København"))
    p.evaluate(changes)
    restated = co2_event("101", 2023, "energy", 700.0, "2025-05-01")
    p.later(minutes=1)
    p.evaluate(p.accounts(restated))  # off track: pending, held
    assert scalar(engine, "SELECT state FROM alert") == "pending"
    corrected = co2_event("101", 2023, "energy", 400.0, "2025-05-20")
    p.later(minutes=20)
    p.evaluate(p.accounts(corrected))  # back on track within the hold time
    p.later(hours=3)
    p.evaluate()
    p.send()
    assert p.smtp.mails == [] and webhook.received == []
    states = rows(engine, "SELECT state FROM alert WHERE target_id IS NOT NULL")
    assert [r["state"] for r in states] == [
        "cleared",
        "cleared",
    ]  # the status alert and the forecast alert, both never sent


def test_an_alert_held_past_the_hold_time_fires_once(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    p = replace(pipeline, rules=replace(pipeline.rules, hold=timedelta(hours=1)))
    _slip(p)
    p.send()
    assert p.smtp.mails == []
    p.later(minutes=61)
    p.evaluate()
    p.send()
    assert len(p.smtp.to(BALLERUP_MAIL)) == 1


def test_acknowledgement_stops_escalation(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    add_contacts(
        engine,
        Contact("Klimakoordinator Gentofte", "Gentofte", "co2", "email", "g@x.example"),
    )
    p = replace(
        pipeline,
        rules=replace(pipeline.rules, escalate_after=timedelta(hours=24)),
    )
    changes = p.accounts(*_accounts("151", SLIPPING), *_accounts("157", SLIPPING))
    changes += p.targets(_dk2020("151", "Ballerup"), _dk2020("157", "Gentofte"))
    p.evaluate(changes)
    p.send()
    ballerup = scalar(
        engine, "SELECT alert_id FROM alert WHERE target_id = 'dk2020-151-2030'"
    )
    in_transaction(
        engine,
        lambda conn: contacts.acknowledge(conn, ballerup, "Ballerup", p.now),
    )
    p.later(hours=1)
    p.evaluate()
    assert scalar(engine, f"SELECT state FROM alert WHERE alert_id = {ballerup}") == (
        "acknowledged"
    )
    p.later(hours=25)
    p.evaluate()
    p.send()
    [escalated] = p.smtp.to(SECRETARIAT_MAIL)  # Gentofte's, not Ballerup's
    assert "Eskaleret" in escalated["Subject"]
    assert "dk2020-157-2030" in escalated["X-Klimapuls-Alert-Key"]
    p.later(hours=48)
    p.evaluate()
    p.send()
    assert len(p.smtp.to(SECRETARIAT_MAIL)) == 1  # escalated once


def test_the_service_reads_the_newest_ack_of_a_firing_alert(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    _slip(pipeline)
    ballerup = scalar(
        engine, "SELECT alert_id FROM alert WHERE target_id = 'dk2020-151-2030'"
    )
    first, newest = pipeline.now, pipeline.now + timedelta(minutes=5)
    for at, by in ((first, "a"), (newest, "b")):
        in_transaction(
            engine,
            lambda conn, at=at, by=by: contacts.acknowledge(conn, ballerup, by, at),
        )
    acks = in_transaction(engine, lambda conn: contacts.pending_acks(conn, [ballerup]))
    assert [(a.at, a.by) for a in acks] == [(newest, "b")]
    pipeline.later(minutes=10)
    pipeline.evaluate()
    acks = in_transaction(engine, lambda conn: contacts.pending_acks(conn, [ballerup]))
    assert acks == []  # acknowledged: nothing left to apply


def test_a_restatement_that_changes_nothing_and_a_replay_send_nothing(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    _slip(pipeline)
    pipeline.send()
    assert len(pipeline.smtp.mails) == 1
    same = [
        co2_event("151", year, "energy", t, f"{year + 2}-05-01")
        for year, t in SLIPPING.items()
    ]
    pipeline.later(hours=2)
    changes = pipeline.accounts(*same)
    assert changes == []  # the targets service logs nothing new ...
    pipeline.evaluate(changes)
    pipeline.alerts.handle(status_messages(pipeline.log))  # ... and a replay
    pipeline.send()
    assert len(pipeline.smtp.mails) == 1
    assert len(webhook.received) == 1


def test_several_alerts_for_one_recipient_go_out_as_one_digest(
    pipeline: Pipeline, engine: Engine, webhook: WebhookServer
) -> None:
    _contacts(engine, webhook)
    second = target_event(
        "dk2020-151-2025",
        scope="151",
        reduction_pct=60,
        target_year=2025,
        name="Ballerup: CO2e -60 % i 2025 (syntetisk)",
    )
    changes = pipeline.accounts(*_accounts("151", SLIPPING))
    changes += pipeline.targets(_dk2020("151", "Ballerup"), second)
    pipeline.evaluate(changes)
    pipeline.send()
    [mail] = pipeline.smtp.to(BALLERUP_MAIL)
    assert "2 beskeder" in mail["Subject"]
    keys = mail["X-Klimapuls-Alert-Key"]
    assert "dk2020-151-2030" in keys and "dk2020-151-2025" in keys
