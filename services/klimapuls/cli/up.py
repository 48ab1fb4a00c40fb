"""`klimapuls up`: start the platform, optionally feed the demo data."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine, bindparam, func, select, text

from klimapuls.cli.render import progress_table
from klimapuls.core.deadletter import dead_letter_id
from klimapuls.core.errors import KlimapulsError
from klimapuls.core.settings import Settings
from klimapuls.core.synthetic import DemoData, co2_demo
from klimapuls.producer import EventProducer
from klimapuls.stack.runner import Stack
from klimapuls.storage.db import create_db_engine
from klimapuls.storage.models import DeadLetterRow, TargetProgressRow

__all__ = ["progress_rows", "run_up"]

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


def _feed_demo(settings: Settings, demo: DemoData, console: Console) -> None:
    with (
        EventProducer(settings, name="klimapuls-demo") as producer,
        _bar(console) as bar,
    ):
        task = bar.add_task(
            "sending demo events", total=len(demo.events) + len(demo.malformed)
        )
        for event in demo.events:
            producer.send("co2_account", event)
            bar.advance(task)
        for body in demo.malformed:
            # Sent as is: the CO2 service must re-validate and dead-letter them.
            producer.send_raw("co2_account", body)
            bar.advance(task)
        producer.flush()


def _processed(
    engine: Engine, event_ids: Sequence[str], dead_ids: Sequence[str]
) -> int:
    stored = text("SELECT count(*) FROM co2_account WHERE event_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    with engine.connect() as conn:
        done = conn.execute(stored, {"ids": list(event_ids)}).scalar_one()
        done += conn.execute(
            select(func.count()).where(DeadLetterRow.dead_letter_id.in_(list(dead_ids)))
        ).scalar_one()
    return int(done)


def _wait_processed(
    stack: Stack, engine: Engine, demo: DemoData, timeout_s: float, console: Console
) -> None:
    """Wait until every demo event is stored or dead-lettered (read from the database).

    Completion is judged by the rows, never by consumer offsets: the dev broker
    reports end offsets wrongly.
    """
    event_ids = [e["event_id"] for e in demo.events]
    dead_ids = [dead_letter_id("co2_account", b.decode()) for b in demo.malformed]
    total = len(event_ids) + len(dead_ids)
    deadline = time.monotonic() + timeout_s
    with _bar(console) as bar:
        task = bar.add_task("processing (stored or dead-lettered)", total=total)
        while True:
            stack.check_services()
            done = _processed(engine, event_ids, dead_ids)
            bar.update(task, completed=done)
            if done >= total:
                return
            if time.monotonic() > deadline:
                raise KlimapulsError(
                    f"demo not processed after {timeout_s:.0f}s ({done}/{total}); "
                    f"see logs in {stack.log_dir}"
                )
            time.sleep(_POLL_S)


def progress_rows(engine: Engine) -> list[dict[str, Any]]:
    """The stored progress of every target, in the `progress --json` shape."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(TargetProgressRow).order_by(TargetProgressRow.target_id)
        )
        result = []
        for r in rows.mappings():
            row = {k: v for k, v in r.items() if not k.startswith("coverage_")}
            row["coverage"] = {
                "year": r["coverage_year"],
                "reported": r["coverage_reported"],
                "expected": r["coverage_expected"],
            }
            row["as_of"] = r["as_of"].isoformat()
            row.pop("computed_at", None)
            result.append(row)
    return result


def _summary(
    engine: Engine, console: Console, demo: DemoData, elapsed_s: float
) -> None:
    with engine.connect() as conn:
        accounts = conn.execute(text("SELECT count(*) FROM co2_account")).scalar_one()
        dead = conn.execute(text("SELECT count(*) FROM dead_letter")).scalar_one()
        reasons = conn.execute(
            text(
                "SELECT field, reason FROM dead_letter "
                "ORDER BY rejected_at, field LIMIT 10"
            )
        ).all()
    console.print(
        f"\n[bold]Klimapuls demo[/] — [yellow]synthetic data[/] (seeded, not real "
        f"figures): {len(demo.events)} account events sent, {accounts} stored "
        f"(restatements kept as versions), {dead} dead letters, "
        f"processed in {elapsed_s:.1f}s"
    )
    for _field, reason in reasons:
        console.print(f"  dead letter: {reason}", highlight=False)
    console.print(
        progress_table(progress_rows(engine), "Target progress (synthetic data)")
    )


def run_up(
    settings: Settings,
    *,
    demo: bool,
    once: bool,
    seed: int,
    timeout_s: float,
    console: Console,
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
                data = co2_demo(seed=seed)
                _feed_demo(settings, data, console)
                _wait_processed(stack, engine, data, timeout_s, console)
                _summary(engine, console, data, time.monotonic() - started)
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
