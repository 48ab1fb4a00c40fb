"""`klimapuls up`: start the platform, optionally feed the demo data."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine, bindparam, text

from klimapuls.cli.progress import database_rows
from klimapuls.cli.render import progress_table
from klimapuls.cli.simulate import send_event
from klimapuls.core.errors import KlimapulsError
from klimapuls.producer import EventProducer
from klimapuls.settings import Settings
from klimapuls.simulator import (
    SimulatedEvent,
    demo_events,
    ids_by_kind,
    kind_counts,
)
from klimapuls.stack.runner import Stack
from klimapuls.storage.db import create_db_engine

__all__ = ["run_up"]

_POLL_S = 0.5


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
    "co2_account": "co2_account",
    "target": "target_version",
    "fleet_status": "fleet_status",
    "mobility_count": "mobility_count",
    "initiative_status": "initiative_status_report",
}


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


def _processed(engine: Engine, expected: dict[str, list[str]]) -> int:
    done = 0
    with engine.connect() as conn:
        for kind, ids in expected.items():
            if kind == "dead_letter":
                table, column = "dead_letter", "dead_letter_id"
            else:
                table, column = _STORED_IN[kind], "event_id"
            query = text(
                f"SELECT count(*) FROM {table} WHERE {column} IN :ids"
            ).bindparams(bindparam("ids", expanding=True))
            done += int(conn.execute(query, {"ids": ids}).scalar_one())
    return done


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
    expected = ids_by_kind(demo)
    total = sum(len(ids) for ids in expected.values())
    deadline = time.monotonic() + timeout_s
    with _bar(console) as bar:
        task = bar.add_task("processing (stored or dead-lettered)", total=total)
        while True:
            stack.check_services()
            done = _processed(engine, expected)
            bar.update(task, completed=done)
            if done >= total:
                return
            if time.monotonic() > deadline:
                raise KlimapulsError(
                    f"demo not processed after {timeout_s:.0f}s ({done}/{total}); "
                    f"see logs in {stack.log_dir}"
                )
            time.sleep(_POLL_S)


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
) -> None:
    with engine.connect() as conn:
        found = {k: conn.execute(text(q)).first() for k, q in _SUMMARY_SQL.items()}
    sent = ", ".join(f"{n} {kind}" for kind, n in sorted(kind_counts(demo).items()))
    console.print(
        f"\n[bold]Klimapuls demo[/] — [yellow]synthetic data[/] (seeded, not real "
        f"figures): sent {sent}; {found['dead'][0]} dead letters; "  # type: ignore[index]
        f"processed in {elapsed_s:.1f}s"
    )
    if found["movia"]:
        day, buses, fossil_free, zero = found["movia"]
        console.print(
            f"  Movia fleet {day}: {buses} buses, {fossil_free:.0f} % fossil-free, "
            f"{zero:.0f} % zero-emission"
        )
    if found["trips"]:
        year, share, bikes, months = found["trips"]
        share_text = "—" if share is None else f"{share:.1f} %"
        console.print(
            f"  Trips {year} (region, {months} months counted): {share_text} "
            f"sustainable, {bikes:,} by bike"
        )
    if found["missing"]:
        round_, missing = found["missing"]
        console.print(
            f"  Initiatives: {missing} reports missing in round {round_}, "
            f"{found['untended'][0]} without a tovholder, "  # type: ignore[index]
            f"{found['handovers'][0]} tovholder hand-overs"  # type: ignore[index]
        )
    rows = database_rows(engine, None)
    console.print(progress_table(rows, "Target progress (synthetic data)"))


def run_up(
    settings: Settings,
    *,
    demo: bool,
    once: bool,
    seed: int,
    timeout_s: float,
    console: Console,
    demo_days: int = 1,
) -> int:
    """Start everything; return the exit code."""
    started = time.monotonic()
    stack = Stack(settings)
    try:
        with console.status("starting broker and database"):
            settings = stack.start_servers()
        broker = "embedded Tansu" if stack.broker else "configured Kafka"
        database = "embedded PostgreSQL" if stack.database else "configured PostgreSQL"
        console.print(
            f"[green]✓[/] {broker} at {settings.require_bootstrap_servers()}, "
            f"{database}"
        )
        with console.status("migrating the database, creating topics"):
            created = stack.prepare()
        console.print(f"[green]✓[/] schema at head, {len(created)} topics created")
        stack.start_services()
        console.print(
            f"[green]✓[/] services started: {', '.join(stack.processes)} "
            f"(logs in {stack.log_dir})"
        )
        engine = create_db_engine(settings.require_database_url())
        try:
            if demo:
                data = demo_events(seed, days=demo_days)
                _feed_demo(settings, data, console)
                _wait_processed(stack, engine, data, timeout_s, console)
                _summary(engine, console, data, time.monotonic() - started)
                from klimapuls.cli.report import write_demo_report

                write_demo_report(engine, settings.data_dir, console)
            if once:
                return 0
            console.print("running; Ctrl-C to stop")
            while True:
                stack.check_services()
                time.sleep(1)
        finally:
            engine.dispose()
    except KeyboardInterrupt:
        console.print("stopping")
        return 0
    finally:
        with console.status("shutting down"):
            stack.stop()
        if once:
            console.print(
                f"[green]✓[/] stack shut down cleanly "
                f"({time.monotonic() - started:.1f}s in all)"
            )
