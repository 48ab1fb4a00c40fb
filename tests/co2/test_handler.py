"""The CO2 handler on a real PostgreSQL, without the broker: the storage rules."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import BatchResult, Incoming
from tests.helpers import co2_event, rows, scalar


def _handle(engine: Engine, *pairs: tuple[str, dict[str, object] | bytes]) -> object:
    handler = Co2Handler(engine, lambda: datetime(2026, 11, 1, tzinfo=UTC))
    return handler.handle(
        [
            Incoming(
                kind,
                body if isinstance(body, bytes) else json.dumps(body).encode(),
                f"test:0:{i}",
            )
            for i, (kind, body) in enumerate(pairs)
        ]
    )


def test_one_id_with_two_contents_in_one_batch_keeps_the_first(engine: Engine) -> None:
    first = co2_event("101", 2022, "energy", 100.0, event_id="dup-1")
    other = {**first, "tonnes_co2e": 999.0}
    result = _handle(engine, ("co2_account", first), ("co2_account", other))
    assert [
        (r["event_id"], float(r["tonnes_co2e"]))
        for r in rows(engine, "SELECT event_id, tonnes_co2e FROM co2_account")
    ] == [("dup-1", 100.0)]
    [letter] = result.dead_letters  # type: ignore[attr-defined]
    assert (
        letter.field == "event_id" and json.loads(letter.payload)["tonnes_co2e"] == 999
    )
    # The stored digest is the first event's own: replaying it is a duplicate.
    again = _handle(engine, ("co2_account", first))
    assert again.dead_letters == [] and again.duplicates == 1  # type: ignore[attr-defined]


def test_every_batch_with_valid_events_announces_a_series_change(
    engine: Engine,
) -> None:
    event = co2_event("101", 2022, "energy", 100.0)
    first = _handle(engine, ("co2_account", event))
    # A replay stores nothing, but still announces: a crash between the commit
    # and the announcement must not lose the change.
    replay = _handle(engine, ("co2_account", event))
    for result in (first, replay):
        [notice] = result.series_changes  # type: ignore[attr-defined]
        assert (notice.indicators, notice.scopes) == (("co2e_total",), ("101", "1084"))
    assert _handle(engine, ("co2_account", b"{bad")).series_changes == []  # type: ignore[attr-defined]


def test_a_resent_fact_with_a_new_reported_at_is_a_duplicate(engine: Engine) -> None:
    event = co2_event(
        "147", 2021, "waste", 5.0, reported_at="2022-05-01T09:00:00+00:00"
    )
    _handle(engine, ("co2_account", event))
    resent = {**event, "reported_at": "2024-01-01T00:00:00+00:00"}
    result = _handle(engine, ("co2_account", resent))
    assert result.dead_letters == [] and result.duplicates == 1  # type: ignore[attr-defined]


def test_values_the_database_cannot_hold_are_dead_letters_not_crashes(
    engine: Engine,
) -> None:
    nul = co2_event("101", 2020, "energy", 1.0, event_id="nul")
    nul["source"] = "a\u0000b"
    result = _handle(
        engine,
        ("co2_account", nul),
        ("co2_account", b'{"schema": "co2_account.v1", "tonnes_co2e": NaN}'),
    )
    fields = sorted(letter.field for letter in result.dead_letters)  # type: ignore[attr-defined]
    assert fields == ["source", "tonnes_co2e"]
    assert scalar(engine, "SELECT count(*) FROM co2_account") == 0


def test_a_window_derives_once_and_a_forced_flush_derives_what_is_left(
    engine: Engine,
) -> None:
    clock = [datetime(2026, 11, 1, tzinfo=UTC)]
    handler = Co2Handler(engine, lambda: clock[0], window_seconds=60)

    def send(*events: dict[str, object]) -> object:
        return handler.handle(
            [
                Incoming("co2_account", json.dumps(e).encode(), f"t:0:{i}")
                for i, e in enumerate(events)
            ]
        )

    def series() -> object:
        return scalar(
            engine,
            "SELECT tonnes_co2e FROM emission_series WHERE scope = '147' "
            "AND year = 2021",
        )

    stored = send(co2_event("147", 2021, "energy", 10.0))
    assert series() is None and not stored.series_changes  # batches never derive
    assert handler.flush().series_changes  # a new handler's timer derives at once
    assert series() == 10.0
    later = send(co2_event("147", 2021, "transport", 5.0))
    assert series() == 10.0 and not later.series_changes  # type: ignore[attr-defined]
    assert not handler.flush().series_changes  # the window is still open
    stopping = handler.flush(force=True)
    assert series() == 15.0
    [notice] = stopping.series_changes
    assert "147" in notice.scopes


def test_a_slow_derive_spaces_out_the_next_one(engine: Engine) -> None:
    """A derive is due a window after the last, or three times its length."""
    clock = [datetime(2026, 11, 1, tzinfo=UTC)]

    class SlowCo2Handler(Co2Handler):
        def derive(self, conn: Connection, now: datetime, result: BatchResult) -> None:
            super().derive(conn, now, result)
            time.sleep(0.3)  # a backlog's derive, much longer than the window

    handler = SlowCo2Handler(engine, lambda: clock[0], window_seconds=0.1)

    def send(sector: str) -> None:
        event = co2_event("147", 2021, sector, 1.0)
        handler.handle([Incoming("co2_account", json.dumps(event).encode(), "t:0:0")])

    send("energy")
    assert handler.flush().series_changes  # the first derive, 0.3 s long
    send("transport")
    clock[0] += timedelta(seconds=0.5)  # past the window, not 3 x 0.3 s
    assert not handler.flush().series_changes
    clock[0] += timedelta(seconds=0.5)
    [notice] = handler.flush().series_changes
    assert "147" in notice.scopes


def test_a_derive_waits_while_the_worker_reads_a_backlog(engine: Engine) -> None:
    """Behind (its batches come full), a worker derives only every
    `backlog_seconds`; once caught up, at its next tick."""
    clock = [datetime(2026, 11, 1, tzinfo=UTC)]
    handler = Co2Handler(engine, lambda: clock[0], window_seconds=1, backlog_seconds=30)

    def send(sector: str) -> None:
        event = co2_event("147", 2021, sector, 1.0)
        handler.handle([Incoming("co2_account", json.dumps(event).encode(), "t:0:0")])

    send("energy")
    assert handler.flush().series_changes  # a new handler derives at once
    handler.reading(behind=True)
    send("transport")
    clock[0] += timedelta(seconds=5)  # five windows later, still behind
    assert not handler.flush().series_changes
    clock[0] += timedelta(seconds=25)  # the backlog's window is over
    assert handler.flush().series_changes
    send("waste")
    clock[0] += timedelta(seconds=2)
    assert not handler.flush().series_changes  # behind: the window is 30 s
    handler.reading(behind=False)  # caught up: the next tick derives
    [notice] = handler.flush().series_changes
    assert "147" in notice.scopes
    assert handler.flush(force=True).series_changes == []  # nothing left


def test_a_new_worker_that_starts_on_a_backlog_derives_once_caught_up(
    engine: Engine,
) -> None:
    """A new handler derives first thing, unless it starts behind (on a
    backlog): then the derive after the backlog covers its batches (a
    restart's leftovers too), or one `backlog_seconds` after it began."""
    clock = [datetime(2026, 11, 1, tzinfo=UTC)]
    handler = Co2Handler(engine, lambda: clock[0], window_seconds=1, backlog_seconds=30)

    def send(sector: str) -> None:
        event = co2_event("147", 2021, sector, 1.0)
        handler.handle([Incoming("co2_account", json.dumps(event).encode(), "t:0:0")])

    handler.reading(behind=True)
    send("energy")
    clock[0] += timedelta(seconds=5)
    assert not handler.flush().series_changes  # behind from the start
    handler.reading(behind=False)
    [notice] = handler.flush().series_changes  # caught up: derives now
    assert "147" in notice.scopes

    late = Co2Handler(engine, lambda: clock[0], window_seconds=1, backlog_seconds=30)
    late.reading(behind=True)
    clock[0] += timedelta(seconds=20)
    assert not late.flush().series_changes
    clock[0] += timedelta(seconds=10)  # a backlog's window after it began
    assert late.flush().series_changes
