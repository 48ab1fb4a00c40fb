"""A real SMTP server and a real HTTP server in the test process, and a small
pipeline that drives the real handlers (co2, targets, alerts) on a clock."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from klimapuls.alerts.handlers import AlertSender, AlertsHandler, SendReport
from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.alert_state import Contact
from klimapuls.core.alerting import AlertRules
from klimapuls.core.batch import BatchResult, Incoming
from klimapuls.core.messages import TargetStatusChange
from klimapuls.notify import SmtpChannel, WebhookChannel
from klimapuls.storage import contacts
from klimapuls.storage.db import in_transaction
from klimapuls.targets.handlers import TargetsHandler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], EmailMessage]] = []
        #: Address -> the SMTP reply that refuses it (`550 ...`, `450 ...`).
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(
            (
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content, policy=email.policy.default),
            )
        )
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a fixed port of 127.0.0.1 that can go down and come back."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.inbox = _Inbox()
        self._controller: Controller | None = None

    def up(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def mails(self) -> list[tuple[list[str], EmailMessage]]:
        return self.inbox.mails

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.mails if address in rcpt]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.up()
    yield server
    server.down()


@dataclass
class WebhookServer:
    url: str
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    #: The body of a refusing answer (what Slack and Teams say why).
    refusal: str = ""
    posts: int = 0


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    state = WebhookServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts += 1
            if state.status == 200:
                state.received.append((dict(self.headers), json.loads(body)))
            answer = b"" if state.status == 200 else state.refusal.encode()
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def batch(kind: str, *events: dict[str, Any]) -> list[Incoming]:
    return [
        Incoming(kind, json.dumps(e).encode(), f"{kind}:0:{i}")
        for i, e in enumerate(events)
    ]


def status_messages(changes: list[TargetStatusChange]) -> list[Incoming]:
    return [
        Incoming("target_status", c.to_json(), f"target-status:0:{c.id}")
        for c in changes
    ]


NO_HOLD = AlertRules(hold=timedelta(0), digest_window=timedelta(0))


@dataclass
class Pipeline:
    """The real handlers of co2, targets and alerts, on one database and clock."""

    engine: Engine
    smtp: SmtpServer
    webhook_url: str
    rules: AlertRules = NO_HOLD
    now: datetime = datetime(2025, 6, 1, 12, tzinfo=UTC)
    retry_base: timedelta = timedelta(seconds=1)
    log: list[TargetStatusChange] = field(default_factory=list)

    def clock(self) -> datetime:
        return self.now

    def restart(self) -> Pipeline:
        """New handler and sender objects (a restarted service) on the same data."""
        return Pipeline(
            self.engine,
            self.smtp,
            self.webhook_url,
            self.rules,
            self.now,
            self.retry_base,
            self.log,
        )

    @property
    def alerts(self) -> AlertsHandler:
        return AlertsHandler(self.engine, self.clock, self.rules)

    @property
    def sender(self) -> AlertSender:
        channels = {
            "email": SmtpChannel(
                "127.0.0.1", self.smtp.port, "Klimapuls <klimapuls@example.org>"
            ),
            "webhook": WebhookChannel(timeout_s=5),
        }
        return AlertSender(
            self.engine,
            self.clock,
            channels,
            self.rules,
            "https://grafana.example.org",
            self.retry_base,
        )

    def accounts(self, *events: dict[str, Any]) -> list[TargetStatusChange]:
        co2 = Co2Handler(self.engine, self.clock)
        notices = co2.handle(batch("co2_account", *events))
        return self._targets(
            [
                Incoming("series_change", n.to_json(), "s:0:0")
                for n in notices.series_changes
            ]
        )

    def targets(self, *events: dict[str, Any]) -> list[TargetStatusChange]:
        return self._targets(batch("target", *events))

    def _targets(self, messages: list[Incoming]) -> list[TargetStatusChange]:
        result: BatchResult = TargetsHandler(self.engine, self.clock).handle(messages)
        self.log.extend(result.status_changes)
        return result.status_changes

    def evaluate(self, changes: list[TargetStatusChange] | None = None) -> None:
        """The alerts service takes the changes (or only the clock) and evaluates."""
        if changes:
            self.alerts.handle(status_messages(changes))
        else:
            self.alerts.refresh()

    def send(self) -> SendReport:
        return self.sender.send_due()

    def later(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def pipeline(engine: Engine, smtp: SmtpServer, webhook: WebhookServer) -> Pipeline:
    return Pipeline(engine, smtp, webhook.url)


def add_contacts(engine: Engine, *people: Contact) -> None:
    in_transaction(engine, lambda conn: contacts.add_contacts(conn, people))
