"""The alert rules on event files, without servers (`klimapuls alerts --offline`).

Each file is one delivery, in order, as the services would see it: its
events are folded (`klimapuls.core.fold.EventFold`, the services' identity
rules), every target is evaluated (`klimapuls.core.progress.evaluate_all`)
and the evaluations the targets service would log are logged
(`status_changes`, forecast moves included); the alert rules then fold them
(`observe_all`) like the alerts service does with `target-status`. After
the last file, every rule runs on the folded inputs as of `now`, and the
state machine runs with the hold time taken as passed: what is printed is
what would fire (or is held back, and by what) if nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from klimapuls.core.alert_state import Alert, Contact, recipients, step
from klimapuls.core.alerting import (
    AlertInputs,
    AlertRules,
    Condition,
    DeadLetterCount,
    TargetObservation,
    conditions,
    feeds_of,
    observe_all,
)
from klimapuls.core.fold import EventFold
from klimapuls.core.identity import Verdict
from klimapuls.core.messages import LastEvaluation, TargetStatusChange
from klimapuls.core.progress import evaluate_all, status_changes
from klimapuls.core.restatements import all_restatements

__all__ = ["OfflineAlerts", "alert_json"]


@dataclass
class OfflineAlerts:
    """Folds event files one delivery at a time and evaluates the alert rules."""

    rules: AlertRules
    now: datetime
    fold: EventFold = field(default_factory=EventFold)
    last: dict[str, LastEvaluation] = field(default_factory=dict)
    log: list[TargetStatusChange] = field(default_factory=list)
    observations: dict[str, TargetObservation] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)

    def count(self, producer: str, verdict: Verdict | None) -> None:
        """Count one line for the dead-letter rule (None: invalid line)."""
        if verdict is Verdict.NEW:
            self.accepted[producer] = self.accepted.get(producer, 0) + 1
        elif verdict is None or verdict is Verdict.REJECTED:
            self.rejected[producer] = self.rejected.get(producer, 0) + 1

    def delivered(self) -> list[TargetStatusChange]:
        """One delivery is folded: evaluate and log as the targets service would."""
        evaluated = evaluate_all(self.fold.facts(), self.now.date())
        changes = status_changes(self.last, evaluated, self.now)
        logged = [
            replace(c, id=len(self.log) + n) for n, c in enumerate(changes, start=1)
        ]
        self.log.extend(logged)
        for c in logged:
            self.last[c.target_id] = (c.status, c.stale, c.forecast_value)
        observe_all(self.observations, logged, self.rules)
        return logged

    def inputs(self) -> AlertInputs:
        """Everything the rules read, folded from the files."""
        producers = sorted(self.accepted.keys() | self.rejected.keys())
        return AlertInputs(
            observations=list(self.observations.values()),
            feeds=feeds_of(self.fold.accounts, self.fold.counts, self.fold.fleet),
            initiatives=self.fold.initiatives(),
            reports=list(self.fold.reports),
            dead_letters=[
                DeadLetterCount(p, self.accepted.get(p, 0), self.rejected.get(p, 0))
                for p in producers
            ],
            vintages=[
                (a.municipality_code, a.year, a.vintage) for a in self.fold.accounts
            ],
            # What the targets service writes to `restatement` from its facts.
            restatements=all_restatements(self.fold.facts()),
        )

    def conditions(self) -> list[Condition]:
        """Every condition of every rule as of `now`."""
        return conditions(self.inputs(), self.now, self.rules)

    def alerts(self) -> list[Alert]:
        """What would fire (or be held back) if the conditions hold."""
        found = self.conditions()
        held = replace(self.rules, hold=timedelta(0))
        return step([], found, [], self.now, held).alerts


def alert_json(alert: Alert, contacts: Sequence[Contact]) -> dict[str, Any]:
    """An alert as `alerts --json` prints it, with its recipients."""
    return {
        "alert_id": alert.alert_id,
        "key": alert.key,
        "rule": alert.rule,
        "subject": alert.subject,
        "scope": alert.scope,
        "period": alert.period,
        "state": alert.state,
        "severity": alert.severity,
        "title": alert.title,
        "target_id": alert.target_id,
        "initiative_id": alert.initiative_id,
        "inhibited_by": alert.inhibited_by,
        "since": alert.since.isoformat(),
        "topic": alert.topic,
        "parties": list(alert.parties),
        "recipients": [
            c.as_json() for c in recipients(alert.parties, alert.topic, contacts)
        ],
        "facts": dict(alert.facts),
    }
