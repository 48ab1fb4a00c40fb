"""The simulated stream: every family mixed by share, and what to count in it.

`simulate` is endless, `demo_events` a finite demo with the same ids;
`ids_by_kind` and `kind_counts` say what a run sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date
from itertools import islice

from klimapuls.core.reference import seed_target_events
from klimapuls.simulator.co2 import co2_events
from klimapuls.simulator.events import DEFAULT_SEED, DEFAULT_START, SimulatedEvent
from klimapuls.simulator.fleet import fleet_events
from klimapuls.simulator.initiatives import initiative_events
from klimapuls.simulator.malformed import malformed_events
from klimapuls.simulator.mobility import mobility_events

__all__ = [
    "MIX",
    "demo_events",
    "ids_by_kind",
    "kind_counts",
    "simulate",
]

#: Share of each source in the stream, per 1,000 events, while it lasts.
MIX: dict[str, int] = {
    "mobility_count": 800,
    "co2_account": 120,
    "fleet_status": 40,
    "initiative_status": 20,
    "target": 10,
    "malformed": 10,
}


# --- The mix ------------------------------------------------------------------


def _targets() -> list[SimulatedEvent]:
    return [SimulatedEvent("target", e) for e in seed_target_events()]


def _mix(sources: dict[str, Iterator[SimulatedEvent]]) -> Iterator[SimulatedEvent]:
    """Interleave sources by `MIX` share (smooth weighted round robin).

    Deterministic, and every source shows up within 1,000 / share events; a
    source that runs out leaves its share to the rest.
    """
    current = dict.fromkeys(sources, 0)
    active = dict(sources)
    while active:
        total = sum(MIX[name] for name in active)
        for name in active:
            current[name] += MIX[name]
        pick = max(active, key=lambda name: current[name])
        current[pick] -= total
        try:
            yield next(active[pick])
        except StopIteration:
            del active[pick]
            current.pop(pick)


def simulate(
    seed: int = DEFAULT_SEED, start: date = DEFAULT_START
) -> Iterator[SimulatedEvent]:
    """The endless simulated stream: history first, mixed with live counts.

    Accounts, fleet snapshots, initiative reports and targets known by
    `start` are interleaved (by `MIX` share) with hourly mobility counts from
    `start` on and a small share of malformed events; once the history is
    sent, counts and malformed events go on.
    """
    return _for_start(
        _mix(
            {
                "mobility_count": mobility_events(seed, start),
                "co2_account": iter(co2_events(seed, start)),
                "fleet_status": iter(fleet_events(seed, start)),
                "initiative_status": iter(initiative_events(seed, start)),
                "target": iter(_targets()),
                "malformed": malformed_events(seed, start),
            }
        ),
        start,
    )


def _for_start(
    events: Iterable[SimulatedEvent], start: date
) -> Iterator[SimulatedEvent]:
    """Tag the ids of start-dependent facts with the start date.

    Fleet, count and initiative figures are drawn along the simulated clock,
    so the same fact from a run with another `--start` has other figures; an
    id of its own keeps it from clashing with the first run's. CO2 accounts
    and targets do not depend on the start and keep their ids.
    """
    for event in events:
        body = event.body
        if isinstance(body, dict) and event.kind not in ("co2_account", "target"):
            body = {**body, "event_id": f"{body['event_id']}@{start.isoformat()}"}
            event = replace(event, body=body)
        yield event


def demo_events(
    seed: int = DEFAULT_SEED, start: date = DEFAULT_START, days: int = 7
) -> list[SimulatedEvent]:
    """A finite demo: all the history, `days` of hourly counts, 12 malformed.

    The same events (same ids) as the first part of `simulate(seed, start)`,
    so running both stores nothing twice.
    """
    return list(
        _for_start(
            _mix(
                {
                    "mobility_count": mobility_events(seed, start, hours=24 * days),
                    "co2_account": iter(co2_events(seed, start)),
                    "fleet_status": iter(fleet_events(seed, start)),
                    "initiative_status": iter(initiative_events(seed, start)),
                    "target": iter(_targets()),
                    "malformed": islice(malformed_events(seed, start), 12),
                }
            ),
            start,
        )
    )


def ids_by_kind(events: Iterable[SimulatedEvent]) -> dict[str, list[str]]:
    """Event ids of the valid events by kind, and dead-letter ids of the rest.

    Malformed bodies are listed under `dead_letter`: a run is fully processed
    when every id is stored in its family's table (or the dead-letter table).
    """
    result: dict[str, list[str]] = {}
    for event in events:
        if event.malformed:
            result.setdefault("dead_letter", []).append(str(event.dead_letter_id))
        else:
            result.setdefault(event.kind, []).append(str(event.event_id))
    return result


def kind_counts(events: Iterable[SimulatedEvent]) -> Counter[str]:
    """How many events of each kind (malformed ones under `malformed`)."""
    return Counter("malformed" if e.malformed else e.kind for e in events)
