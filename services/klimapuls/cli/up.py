"""`klimapuls up`: start the platform, supervise it, optionally feed the demo data.

Runs until the user stops it (Ctrl-C or SIGTERM, handled alike): then, with
the embedded broker, it first drains what is in the topics (bounded, with a
progress line), then stops the services, the broker and PostgreSQL. With
`--once` it exits 0 when every demo event is stored or dead-lettered, and
non-zero when interrupted or when it gives up.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine, text

from klimapuls.cli.alerts_demo import (
    alerts_summary,
    seed_demo_contacts,
    start_demo_alerting,
)
from klimapuls.cli.common import escape, masked, plural
from klimapuls.cli.progress import database_rows
from klimapuls.cli.render import print_progress
from klimapuls.cli.report import write_demo_report
from klimapuls.cli.simulate import send_event
from klimapuls.core.errors import KlimapulsError
from klimapuls.process import stops_not_dropped
from klimapuls.producer import EventProducer
from klimapuls.settings import Settings
from klimapuls.simulator import (
    SimulatedEvent,
    demo_events,
    dk2020_demo_targets,
    ids_by_kind,
    kind_counts,
)
from klimapuls.stack.lock import UpLock
from klimapuls.stack.runner import Stack
from klimapuls.stack.state import StackState
from klimapuls.storage.db import create_db_engine

__all__ = ["StopRequestedError", "run_up"]

_POLL_S = 0.5
#: Exit codes of an interrupted `--once` (the shell's 128 + signal).
_INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopRequestedError(KeyboardInterrupt):
    """The user asked `up` to stop (Ctrl-C or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise StopRequestedError(signum)


@contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM both become a `StopRequestedError`, while `up` runs.

    One that Python drops (raised in a finalizer or a weakref callback) is
    sent again (`stops_not_dropped`): a Ctrl-C right after the services
    started was lost so, with a traceback on the terminal.
    """
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, _on_signal)
    try:
        with stops_not_dropped():
            yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


#: Where each family's events end up, to tell when the demo is processed.
_STORED_IN = {
    "co2_account": ("co2_account", "event_id"),
    "target": ("target_version", "event_id"),
    "fleet_status": ("fleet_status", "event_id"),
    "mobility_count": ("mobility_count", "event_id"),
    "initiative_status": ("initiative_status_report", "event_id"),
    "dead_letter": ("dead_letter", "dead_letter_id"),
}


class Completion:
    """Which expected ids are stored yet, cheaply at millions of ids.

    The ids go once into a temporary table (COPY); each poll deletes from it
    the ids now found (an index lookup per remaining id) and counts what was
    deleted, so a poll costs what is still missing, never a full recount,
    and no statement carries more than a handful of parameters.
    """

    def __init__(self, engine: Engine, expected: dict[str, list[str]]) -> None:
        self.total = sum(len(ids) for ids in expected.values())
        self.done = 0
        self._conn = engine.raw_connection()
        cursor = self._conn.cursor()
        cursor.execute(
            "CREATE TEMPORARY TABLE pending_id (kind text NOT NULL, id text NOT NULL)"
        )
        with cursor.copy("COPY pending_id (kind, id) FROM STDIN") as copy:
            for kind, ids in expected.items():
                for event_id in ids:
                    copy.write_row((kind, event_id))
        cursor.execute("CREATE INDEX ON pending_id (kind)")
        cursor.execute("ANALYZE pending_id")
        self._conn.commit()
        self._kinds = sorted(expected)

    def poll(self) -> int:
        """How many expected ids are stored by now."""
        cursor = self._conn.cursor()
        for kind in self._kinds:
            table, column = _STORED_IN[kind]
            cursor.execute(
                f"DELETE FROM pending_id p USING {table} t "
                f"WHERE p.kind = %s AND t.{column} = p.id",
                (kind,),
            )
            self.done += max(cursor.rowcount, 0)
        self._conn.commit()
        return self.done

    def close(self) -> None:
        """Drop the temporary table with its connection."""
        self._conn.close()


def _feed_demo(
    settings: Settings, demo: Sequence[SimulatedEvent], console: Console
) -> None:
    with (
        EventProducer(settings, name="klimapuls-demo") as producer,
        _bar(console) as bar,
    ):
        task = bar.add_task("sending demo events", total=len(demo))
        for event in demo:
            # Malformed bodies go as they are: the services must dead-letter them.
            send_event(producer, event)
            bar.advance(task)
        producer.flush()


def _wait_processed(
    stack: Stack,
    engine: Engine,
    demo: Sequence[SimulatedEvent],
    timeout_s: float,
    console: Console,
) -> None:
    """Wait until every demo event is stored or dead-lettered (read from the database).

    Completion is judged by the rows, never by consumer offsets: the dev broker
    reports end offsets wrongly.
    """
    completion = Completion(engine, ids_by_kind(demo))
    deadline = time.monotonic() + timeout_s
    try:
        with _bar(console) as bar:
            task = bar.add_task(
                "processing (stored or dead-lettered)", total=completion.total
            )
            while True:
                stack.supervise(lambda note: _note(console, note))
                done = completion.poll()
                bar.update(task, completed=done)
                if done >= completion.total:
                    return
                if time.monotonic() > deadline:
                    raise KlimapulsError(
                        f"demo not processed after {timeout_s:g} s "
                        f"({done:,}/{completion.total:,}); see the logs in "
                        f"{stack.log_dir}"
                    )
                time.sleep(_POLL_S)
    finally:
        completion.close()


_SUMMARY_SQL = {
    "dead": "SELECT count(*) FROM dead_letter",
    "movia": "SELECT date, total_buses, fossil_free_share, zero_emission_share "
    "FROM fleet_share WHERE scope = 'movia' ORDER BY date DESC LIMIT 1",
    "trips": "SELECT year, sustainable_share_pct, bike_trips, months_covered "
    "FROM mobility_year WHERE scope = '1084' ORDER BY year DESC LIMIT 1",
    "missing": "SELECT round, count(*) FROM initiative_missing_report "
    "GROUP BY round ORDER BY round DESC LIMIT 1",
    "untended": "SELECT count(*) FROM initiative_without_tovholder",
    "handovers": "SELECT count(*) FROM tovholder_handover",
}


def _summary(
    engine: Engine, console: Console, demo: Sequence[SimulatedEvent], elapsed_s: float
) -> dict[str, str]:
    """Print what the demo stored; return each target's status as printed."""
    with engine.connect() as conn:
        found = {k: conn.execute(text(q)).first() for k, q in _SUMMARY_SQL.items()}
    sent = ", ".join(f"{n} {kind}" for kind, n in sorted(kind_counts(demo).items()))
    dead = found["dead"][0]  # type: ignore[index]
    console.print()
    console.print(
        f"[bold]Klimapuls demo[/] — [yellow]synthetic data[/] (seeded, not real "
        f"figures): sent {sent}; {plural(dead, 'dead letter')}; "
        f"processed in {elapsed_s:.1f} s"
    )
    if found["movia"]:
        day, buses, fossil_free, zero = found["movia"]
        console.print(
            f"  Movia fleet {day}: {plural(buses, 'bus', 'buses')}, "
            f"{fossil_free:.0f} % fossil-free, {zero:.0f} % zero-emission"
        )
    if found["trips"]:
        year, share, bikes, months = found["trips"]
        share_text = "—" if share is None else f"{share:.1f} %"
        console.print(
            f"  Trips {year} (region, {plural(months, 'month')} counted): "
            f"{share_text} sustainable, {bikes:,} by bike"
        )
    if found["missing"]:
        round_, missing = found["missing"]
        untended = found["untended"][0]  # type: ignore[index]
        handovers = found["handovers"][0]  # type: ignore[index]
        console.print(
            f"  Initiatives: {plural(missing, 'report')} missing in round "
            f"{round_}, {untended} without a tovholder, "
            f"{plural(handovers, 'tovholder hand-over')}"
        )
    rows = database_rows(engine, None)
    print_progress(console, rows, "Target progress (synthetic data)")
    return {row["target_id"]: row["status"] for row in rows}


def _note(console: Console, note: str) -> None:
    console.print(f"[yellow]![/] {escape(note)}")


def _addresses(stack: Stack, settings: Settings, console: Console) -> None:
    broker = "embedded Tansu" if stack.broker else "configured Kafka"
    database = "embedded PostgreSQL" if stack.database else "configured PostgreSQL"
    console.print(
        f"[green]✓[/] {broker} at {escape(settings.require_bootstrap_servers())}, "
        f"{database}"
    )
    console.print(
        f"  KAFKA_BOOTSTRAP_SERVERS={escape(settings.require_bootstrap_servers())}"
    )
    console.print(f"  DATABASE_URL={escape(masked(settings.require_database_url()))}")
    console.print(
        f"  (saved in {escape(str(StackState.path(settings.data_dir)))}; "
        "klimapuls commands run in this folder use them when the variables "
        "are unset)"
    )


def _per_topic(left: Mapping[str, int]) -> str:
    return ", ".join(f"{topic} {n:,}" for topic, n in sorted(left.items()))


def _drain(stack: Stack, console: Console, timeout_s: float) -> bool:
    """Drain the embedded broker's topics; True when nothing was left."""
    if stack.broker is None:
        console.print(
            "configured Kafka keeps unprocessed events; the services resume "
            "from their committed offsets"
        )
        return True

    def progress(left: Mapping[str, int], elapsed: float) -> None:
        console.print(
            f"draining: {plural(sum(left.values()), 'event')} still to process "
            f"({_per_topic(left)}); {elapsed:.0f} s of at most {timeout_s:g} s",
            markup=False,
        )

    intake = stack.close_intake()
    console.print(
        "draining the topics before stopping (Ctrl-C again to skip); "
        + (
            "the gateway answers 503 with Retry-After meanwhile"
            if intake
            else "no gateway runs"
        )
    )
    try:
        report = stack.drain(timeout_s, progress)
    except KeyboardInterrupt:
        console.print(
            "[yellow]drain skipped[/]: events still in the embedded broker "
            "are lost when it stops"
        )
        return False
    if report.complete:
        console.print(
            f"[green]✓[/] drained in {report.seconds:.1f} s: every event in the "
            "topics is processed"
        )
        return True
    console.print(
        f"[red]drain incomplete after {report.seconds:.0f} s[/]: "
        f"{plural(report.left, 'event')} not processed "
        f"({escape(_per_topic(report.left_by_topic))}) are lost with the "
        "embedded broker (memory only)"
    )
    return False


def _run(
    stack: Stack,
    *,
    demo: bool,
    once: bool,
    seed: int,
    demo_days: int,
    timeout_s: float,
    console: Console,
    started: float,
    cleanup: list[Callable[[], None]],
) -> int:
    with console.status("starting broker and database"):
        settings = stack.start_servers(lambda note: _note(console, note))
    _addresses(stack, settings, console)
    with console.status("migrating the database, creating topics"):
        created = stack.prepare()
    console.print(
        f"[green]✓[/] schema at head, {plural(len(created), 'topic')} created"
    )
    catcher = None
    if demo:
        # The demo's alerts go to an SMTP catcher under the data folder.
        stack.settings, catcher = start_demo_alerting(stack.settings)
        cleanup.append(catcher.stop)
    stack.start_services()
    console.print(
        f"[green]✓[/] services started: {', '.join(stack.processes)} "
        f"(logs in {escape(str(stack.log_dir))}); supervised: a service that "
        "stops is restarted"
    )
    console.print(
        f"[green]✓[/] gateway at http://{settings.gateway_host}:"
        f"{settings.gateway_port}/v1/events (tokens: klimapuls tokens create)"
    )
    engine = create_db_engine(settings.require_database_url())
    try:
        if demo:
            days = plural(demo_days, "day")
            with console.status(f"making the demo data ({days} of counts)"):
                data = demo_events(seed, days=demo_days) + dk2020_demo_targets()
            seed_demo_contacts(engine)
            _feed_demo(settings, data, console)
            _wait_processed(stack, engine, data, timeout_s, console)
            statuses = _summary(engine, console, data, time.monotonic() - started)
            if catcher is not None:
                alerts_summary(engine, console, catcher, statuses)
            write_demo_report(engine, settings.data_dir, console)
        if once:
            return 0
        console.print("running; Ctrl-C (or SIGTERM) drains the topics and stops")
        while True:
            stack.supervise(lambda note: _note(console, note))
            time.sleep(_POLL_S)
    finally:
        engine.dispose()


def run_up(
    settings: Settings,
    *,
    demo: bool,
    once: bool,
    seed: int,
    timeout_s: float,
    console: Console,
    demo_days: int = 1,
    drain_timeout_s: float = 60.0,
) -> int:
    """Start everything, supervise until done or stopped; return the exit code.

    First takes `DATA_DIR/up.lock` (`klimapuls.stack.lock`): a second `up` on
    the same folder refuses before it touches anything of the first's.
    """
    lock = UpLock.acquire(settings.data_dir, lambda note: _note(console, note))
    try:
        return _run_locked(
            settings,
            demo=demo,
            once=once,
            seed=seed,
            timeout_s=timeout_s,
            console=console,
            demo_days=demo_days,
            drain_timeout_s=drain_timeout_s,
        )
    finally:
        lock.release()


def _run_locked(
    settings: Settings,
    *,
    demo: bool,
    once: bool,
    seed: int,
    timeout_s: float,
    console: Console,
    demo_days: int,
    drain_timeout_s: float,
) -> int:
    started = time.monotonic()
    stack = Stack(settings)
    cleanup: list[Callable[[], None]] = []
    code = 1
    with _stop_signals():
        try:
            code = _run(
                stack,
                demo=demo,
                once=once,
                seed=seed,
                demo_days=demo_days,
                timeout_s=timeout_s,
                console=console,
                started=started,
                cleanup=cleanup,
            )
        except StopRequestedError as stop:
            name = signal.Signals(stop.signum).name
            console.print(f"stopping ({name})")
            drained = (
                _drain(stack, console, drain_timeout_s) if stack.processes else True
            )
            code = (
                _INTERRUPTED[signal.Signals(stop.signum)]
                if once
                else (0 if drained else 1)
            )
            if once:
                console.print(
                    "[red]interrupted[/]: the demo was not completely processed"
                )
        except KeyboardInterrupt:
            code = 130
        finally:
            try:
                with console.status("shutting down"):
                    stack.stop()
                    for step in cleanup:
                        step()
                console.print(
                    f"[green]✓[/] stack shut down cleanly "
                    f"({time.monotonic() - started:.1f} s in all)"
                )
            except KeyboardInterrupt:
                # Ctrl-C during the shutdown: the rest at once, and said so.
                stack.stop(timeout_s=2)
                console.print(
                    "[yellow]shut down in a hurry[/] (Ctrl-C): the services "
                    "were given 2 s to stop"
                )
    return code
