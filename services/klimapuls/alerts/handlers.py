"""Alert evaluation and sending (no Kafka here).

`AlertsHandler` folds each batch of `target_status.v1` messages into what
is remembered of the targets and evaluates every rule, in one transaction:
load (storage: observations, feeds, initiatives, dead letters, open alerts,
acknowledgements, contacts) -> evaluate (core: conditions, inhibition, the
state machine, routing) -> write (storage: alerts, notices, deliveries).
Its `refresh` does the same without messages (feeds and hold times change
with time).

`AlertSender` drains the outbox: it groups due deliveries per recipient
into messages (digests) and stores each message with its key and text
before anything is sent; then it sends each due message while holding its
row lock and marks it sent in that transaction. A channel that is away
leaves the message pending with a back-off; a sender killed after the
channel took a message but before the commit sends it once more, under
the same key (the only repeat).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from klimapuls.core.alert_state import digests, message_key, route, step
from klimapuls.core.alert_text import render_message
from klimapuls.core.alerting import (
    AlertInputs,
    AlertRules,
    TargetObservation,
    conditions,
    observe_all,
)
from klimapuls.core.authorisation import Grants
from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.identity import Verdict
from klimapuls.core.messages import TargetStatusChange
from klimapuls.notify import Channel, ChannelError
from klimapuls.storage import alert_inputs, alerts, contacts
from klimapuls.storage.db import in_transaction

__all__ = [
    "TARGET_STATUS",
    "AlertSender",
    "AlertsHandler",
    "SendReport",
    "evaluate",
    "fold",
]

log = logging.getLogger(__name__)

TARGET_STATUS = "target_status"


def fold(
    conn: Connection, rules: AlertRules, changes: Sequence[TargetStatusChange]
) -> dict[str, TargetObservation]:
    """Fold logged target evaluations into what is remembered; all of it."""
    alerts.lock_alerts(conn)
    observations = alerts.load_observations(conn)
    alerts.write_observations(conn, observe_all(observations, changes, rules))
    return observations


def evaluate(
    conn: Connection,
    now: datetime,
    rules: AlertRules,
    changes: Sequence[TargetStatusChange] = (),
) -> int:
    """Fold `changes`, evaluate every rule as of `now`, write; returns notices."""
    observations = fold(conn, rules, changes)
    listed, reports = alert_inputs.initiatives_and_reports(conn)
    inputs = AlertInputs(
        observations=list(observations.values()),
        feeds=alert_inputs.feeds(conn),
        initiatives=listed,
        reports=reports,
        dead_letters=alert_inputs.dead_letter_counts(
            conn, now - rules.dead_letter_window
        ),
        vintages=alert_inputs.newest_vintages(conn),
        restatements=alert_inputs.restatements(conn, now - rules.restatement_window),
    )
    found = conditions(inputs, now, rules)
    known = alerts.open_alerts(conn)
    acks = contacts.pending_acks(
        conn, [a.alert_id for a in known if a.alert_id is not None]
    )
    decided = step(known, found, acks, now, rules)
    ids = alerts.write_alerts(conn, decided.alerts)
    stored = alerts.write_notices(conn, decided.notices, ids, now)
    alerts.write_deliveries(
        conn,
        [
            {
                "notice_id": notice_id,
                "recipient": person.name,
                "party": person.party,
                "channel": person.channel,
                "address": person.address,
                "created_at": now,
            }
            for notice_id, person in route(stored, contacts.contacts(conn))
        ],
    )
    seen = max((o.change.id or 0 for o in observations.values()), default=0)
    alerts.mark_evaluated(conn, now, seen)
    return len(stored)


class AlertsHandler:
    """Keeps alerts current from target evaluations, feeds and the clock.

    A batch is always folded in; the rules run after it unless they ran less
    than `min_interval` ago (the timer's `refresh` then runs them), so a burst
    of evaluations does not re-run every rule for each batch.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        rules: AlertRules,
        name: str = "alerts",
        min_interval: timedelta = timedelta(0),
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rules = rules
        self.name = name
        self.min_interval = min_interval
        self._evaluated: datetime | None = None

    def _due(self, now: datetime) -> bool:
        return self._evaluated is None or now - self._evaluated >= self.min_interval

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Fold a batch of `target_status.v1` messages and evaluate."""
        now = self.clock()
        # Status changes are the targets service's own messages: they write no
        # producer's scope, so no grants apply.
        result, valid = decode_batch(
            batch, (TARGET_STATUS,), self.name, now, BatchResult, grants=Grants()
        )
        decoded = valid[TARGET_STATUS]
        changes = [TargetStatusChange.from_json(json.dumps(d.event)) for d in decoded]
        if self._due(now):
            in_transaction(
                self.engine, lambda conn: evaluate(conn, now, self.rules, changes)
            )
            self._evaluated = now
        else:
            in_transaction(self.engine, lambda conn: fold(conn, self.rules, changes))
        for d in decoded:
            result.verdicts[d.index] = Verdict.NEW
        result.stored = len(decoded)
        return result

    def refresh(self) -> BatchResult:
        """Evaluate as of now without new messages (hold times, stale feeds)."""
        now = self.clock()
        in_transaction(self.engine, lambda conn: evaluate(conn, now, self.rules))
        self._evaluated = now
        return BatchResult()


@dataclass(frozen=True)
class SendReport:
    """What one round of sending did."""

    grouped: int = 0
    sent: int = 0
    #: Attempts that failed (retried later, or given up).
    failed: int = 0
    #: Messages given up on this round (refused for good: marked `failed`).
    given_up: int = 0


_MAX_BACKOFF = timedelta(minutes=10)
_PER_ROUND = 200
#: Attempts of a message the channel refuses for good (SMTP 5xx) before it is
#: marked failed (a few: a misconfigured server may be mended meanwhile).
PERMANENT_ATTEMPTS = 3


class AlertSender:
    """Groups due deliveries into messages and sends them through channels."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        channels: Mapping[str, Channel],
        rules: AlertRules,
        board_url: str,
        retry_base: timedelta = timedelta(seconds=2),
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.channels = channels
        self.rules = rules
        self.board_url = board_url
        self.retry_base = retry_base

    def _group(self, conn: Connection, now: datetime) -> int:
        alerts.lock_sending(conn)
        groups = digests(alerts.pending_deliveries(conn), now, self.rules)
        records = alerts.notice_records(
            conn, (d.notice_id for group in groups for d in group)
        )
        for group in groups:
            first = group[0]
            ids = [d.delivery_id for d in group]
            # One record per notice, even if a contact is listed twice.
            notices = dict.fromkeys(d.notice_id for d in group)
            message = render_message(
                [records[n] for n in notices],
                key=message_key(first.channel, first.address, ids),
                channel=first.channel,
                address=first.address,
                recipient=first.recipient,
                board_url=self.board_url,
            )
            alerts.store_message(conn, message, ids, now)
        return len(groups)

    def _backoff(self, attempts: int) -> timedelta:
        return min(self.retry_base * (2 ** min(attempts, 16)), _MAX_BACKOFF)

    def _send_one(self, conn: Connection, now: datetime) -> str | None:
        claimed = alerts.claim_message(conn, now)
        if claimed is None:
            return None
        message = claimed.message
        try:
            self.channels[message.channel].send(message)
        except ChannelError as exc:
            if exc.permanent and claimed.attempts + 1 >= PERMANENT_ATTEMPTS:
                log.error(
                    "message %s to %s refused for good after %d attempts, "
                    "marked failed: %s",
                    message.key,
                    message.address,
                    claimed.attempts + 1,
                    exc,
                )
                alerts.mark_given_up(conn, claimed.message_id, str(exc))
                return "given_up"
            retry_at = now + self._backoff(claimed.attempts)
            log.warning(
                "message %s to %s not sent (attempt %d), retry at %s: %s",
                message.key,
                message.address,
                claimed.attempts + 1,
                retry_at.isoformat(),
                exc,
            )
            alerts.mark_failed(conn, claimed.message_id, str(exc), retry_at)
            return "failed"
        alerts.mark_sent(conn, claimed.message_id, now)
        return "sent"

    def send_due(self) -> SendReport:
        """Group what is due into messages, then send every due message once."""
        now = self.clock()
        grouped = in_transaction(self.engine, lambda conn: self._group(conn, now))
        outcomes = {"sent": 0, "failed": 0, "given_up": 0}
        for _ in range(_PER_ROUND):
            outcome = in_transaction(
                self.engine, lambda conn: self._send_one(conn, now)
            )
            if outcome is None:
                break
            outcomes[outcome] += 1
        given_up = outcomes["given_up"]
        return SendReport(
            grouped, outcomes["sent"], outcomes["failed"] + given_up, given_up
        )
