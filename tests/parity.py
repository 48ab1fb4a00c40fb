"""The same events through the services on a real database and through the fold.

`through_database` hands events to the services' handlers (consecutive
events of one family in one batch, in order) and `through_fold` to the
offline fold; `database_view` and `fold_view` read back what counts (current
figures, snapshots, trips, reports, hand-overs) in one comparable shape, so
a test asserts both paths give the same answers on the same events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Engine

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.accounts import current_figures
from klimapuls.core.batch import Incoming
from klimapuls.core.fleet import current_snapshots
from klimapuls.core.fold import EventFold
from klimapuls.core.identity import Verdict
from klimapuls.core.initiatives import (
    StatusReport,
    current_reports,
    reference_initiatives,
    tovholder_timeline,
)
from klimapuls.core.progress import Facts, evaluate_all
from klimapuls.core.validation import validate_event
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.importers import ImportOptions, convert
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.producer.readers import complete_envelope
from klimapuls.storage.db import in_transaction
from klimapuls.storage.facts import load_facts
from klimapuls.targets.handlers import TargetsHandler
from tests.helpers import rows

Event = tuple[str, dict[str, Any]]

HANDLERS: dict[str, Callable[..., Any]] = {
    "co2_account": Co2Handler,
    "fleet_status": FleetHandler,
    "mobility_count": MobilityHandler,
    "initiative_status": InitiativeHandler,
    "target": TargetsHandler,
}


def imported(
    import_kind: str,
    text: str,
    at: datetime,
    options: ImportOptions | None = None,
) -> list[Event]:
    """The events `klimapuls import` sends for a file imported at `at`."""
    events: list[Event] = []
    for item in convert(
        import_kind,
        text,
        lambda kind, event: complete_envelope(kind, event, "pytest", at),
        options,
    ):
        assert item.event is not None, item.issues
        events.append((item.kind, item.event))
    return events


def through_database(
    engine: Engine, events: Sequence[Event], now: datetime
) -> list[Verdict | None]:
    """Each event through its service's handler; the verdicts, in order."""
    verdicts: list[Verdict | None] = []
    for kind, run in groupby(events, key=lambda pair: pair[0]):
        batch = [
            Incoming(kind, json.dumps(event).encode(), f"t:0:{i}")
            for i, (_, event) in enumerate(run)
        ]
        verdicts.extend(HANDLERS[kind](engine, lambda: now).handle(batch).verdicts)
    TargetsHandler(engine, lambda: now).refresh()
    return verdicts


def through_fold(
    events: Sequence[Event], now: datetime
) -> tuple[EventFold, list[Verdict | None]]:
    """Each event through the offline fold; the fold and the verdicts."""
    fold = EventFold()
    verdicts: list[Verdict | None] = [
        fold.judge(kind, validate_event(kind, event, now=now)).verdict
        for kind, event in events
    ]
    return fold, verdicts


def database_progress(engine: Engine, as_of: date) -> list[dict[str, Any]]:
    """Every target's progress from the database (as `klimapuls progress`)."""
    facts = in_transaction(engine, load_facts)
    return [p.as_json() for p in evaluate_all(facts, as_of)]


def fold_progress(fold: EventFold, as_of: date) -> list[dict[str, Any]]:
    """Every target's progress from the fold (as `progress --offline`)."""
    return [p.as_json() for p in evaluate_all(fold.facts(), as_of)]


def _handovers(initiative_id: str, reports: Iterable[StatusReport]) -> list[Any]:
    item = next(i for i in reference_initiatives() if i.initiative_id == initiative_id)
    timeline = tovholder_timeline(
        initiative_id, item.tovholdere, item.since, list(reports)
    )
    return [
        (h.round, h.effective_date.isoformat(), list(h.previous), list(h.new))
        for h in timeline.handovers
    ]


def _view(facts: Facts, reports: Sequence[StatusReport]) -> dict[str, Any]:
    current = current_reports(reports)
    touched = sorted({r.initiative_id for r in reports})
    return {
        "figures": sorted(current_figures(facts.accounts).items()),
        "fleet": sorted(
            (slot, s.buses.as_dict())
            for slot, s in current_snapshots(facts.fleet).items()
        ),
        "trips": sorted(facts.trips, key=repr),
        "reports": sorted(
            (slot, r.status, r.tovholdere) for slot, r in current.items()
        ),
        "handovers": {i: _handovers(i, reports) for i in touched},
    }


def fold_view(fold: EventFold) -> dict[str, Any]:
    """What counts after the fold."""
    return _view(fold.facts(), fold.reports)


def _stored_reports(engine: Engine) -> list[StatusReport]:
    return [
        StatusReport(
            event_id=r["event_id"],
            initiative_id=r["initiative_id"],
            round=r["round"],
            status=r["status"],
            tovholdere=None if r["tovholdere"] is None else tuple(r["tovholdere"]),
            reported_at=r["reported_at"],
            effective_date=r["effective_date"],
        )
        for r in rows(engine, "SELECT * FROM initiative_status_report")
    ]


def database_view(engine: Engine) -> dict[str, Any]:
    """What counts in the database; hand-overs as the service stored them."""
    view = _view(in_transaction(engine, load_facts), _stored_reports(engine))
    view["handovers"] = {
        i: [
            (r["round"], r["effective_date"].isoformat(), r["previous"], r["new"])
            for r in rows(
                engine,
                "SELECT * FROM tovholder_handover WHERE initiative_id = :i "
                "ORDER BY effective_date, round",
                i=i,
            )
        ]
        for i in view["handovers"]
    }
    return view
