"""`klimapuls simulate`: stream a seeded, realistic, synthetic event mix.

The events come from `klimapuls.simulator`; this module only paces them
(a token bucket: `--rate` events per second, short bursts allowed), sends them
with the Python producer (malformed bodies as they are, so the services must
dead-letter them) and reports what it sent.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from klimapuls.core.validation import EVENT_KINDS
from klimapuls.producer import EventProducer
from klimapuls.settings import Settings
from klimapuls.simulator import (
    DEFAULT_SEED,
    DEFAULT_START,
    SimulatedEvent,
    simulate,
)

__all__ = [
    "SimulationReport",
    "TokenBucket",
    "print_summary",
    "register",
    "run_simulate",
    "send_event",
]

_LOCAL = ZoneInfo("Europe/Copenhagen")
_REFRESH_S = 0.2
_BURST_S = 0.05  # the bucket holds this many seconds' worth of events...
_BURST_MAX = 500  # ...but no more, so a run overshoots --duration by ~0.1 s at most


class TokenBucket:
    """Pacing: `rate` tokens a second, at most `capacity` saved up.

    Time is passed in (seconds from any monotonic clock), so it is testable.
    """

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self._tokens = 1.0
        self._last = now

    def take(self, now: float, most: int) -> int:
        """Take every whole token available now (at most `most`); how many."""
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        taken = min(int(self._tokens), most)
        self._tokens -= taken
        return taken

    def wait_s(self) -> float:
        """Seconds until the next whole token."""
        return max(1.0 - self._tokens, 0.0) / self.rate


@dataclass
class SimulationReport:
    """What a simulation run sent."""

    seed: int
    start: date
    sent: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    send_s: float = 0.0
    flush_s: float = 0.0
    first_interval: str | None = None
    last_interval: str | None = None
    interrupted: bool = False

    @property
    def total(self) -> int:
        """Every message sent, valid and malformed."""
        return sum(self.sent.values()) + sum(self.malformed.values())

    @property
    def rate(self) -> float:
        """Achieved events per second while sending."""
        return self.total / self.send_s if self.send_s > 0 else 0.0

    def record(self, event: SimulatedEvent) -> None:
        """Count one sent event; follow the simulated clock."""
        if event.malformed:
            self.malformed[event.kind] += 1
            return
        self.sent[event.kind] += 1
        if event.kind == "mobility_count" and isinstance(event.body, dict):
            moment = event.body["interval_start"]
            self.first_interval = self.first_interval or moment
            self.last_interval = moment


def _clock(moment: str | None) -> str:
    if moment is None:
        return "-"
    local = datetime.fromisoformat(moment).astimezone(_LOCAL)
    return local.strftime("%Y-%m-%d %H:%M %Z")


def _mix(report: SimulationReport) -> str:
    short = {
        "co2_account": "co2",
        "target": "target",
        "fleet_status": "fleet",
        "mobility_count": "mobility",
        "initiative_status": "initiative",
    }
    parts = [f"{short[k]} {report.sent[k]}" for k in EVENT_KINDS if report.sent[k]]
    parts.append(f"malformed {sum(report.malformed.values())}")
    return (
        "  " + " · ".join(parts) + f" · simulated clock {_clock(report.last_interval)}"
    )


def send_event(producer: EventProducer, event: SimulatedEvent) -> None:
    """Send one simulated event: valid ones as events, malformed bodies as is."""
    if isinstance(event.body, bytes):
        # As is: the consuming service must reject it to the dead-letter topic.
        producer.send_raw(event.kind, event.body)
    else:
        producer.send(event.kind, event.body)


def run_simulate(
    settings: Settings,
    *,
    rate: float,
    duration_s: float,
    seed: int,
    start: date,
    console: Console,
) -> SimulationReport:
    """Send `rate` events a second for `duration_s` s (or until Ctrl-C or SIGTERM).

    Returns after every sent event is acknowledged by the broker.
    """
    report = SimulationReport(seed=seed, start=start)
    budget = int(rate * duration_s)
    stream = simulate(seed, start)
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]simulating[/] [yellow](synthetic data)[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.0f} events/s"),
        TimeElapsedColumn(),
    )
    bar = Progress(*columns, console=console)
    task = bar.add_task("simulate", total=budget, rate=0.0)
    mix = Text()
    # kafka-python warns when its I/O thread waits for the GIL, which this tight
    # send loop holds by design; the warning says nothing about delivery.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    with (
        EventProducer(settings, name="klimapuls-simulator") as producer,
        (
            Live(Group(bar, mix), console=console, refresh_per_second=8)
            if console.is_terminal
            else nullcontext()
        ),
    ):
        started = time.monotonic()
        deadline = started + duration_s
        bucket = TokenBucket(rate, min(rate * _BURST_S, _BURST_MAX), started)
        refreshed = started

        def show(now: float) -> None:
            achieved = report.total / (now - started) if now > started else 0.0
            bar.update(task, completed=report.total, rate=achieved)
            mix.plain = _mix(report)

        # A SIGTERM (a supervisor's, `timeout`'s) ends it as a Ctrl-C does:
        # what was sent is flushed and summed up.
        terminated = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            while report.total < budget:
                now = time.monotonic()
                if now >= deadline:
                    break
                allowed = bucket.take(now, budget - report.total)
                if not allowed:
                    time.sleep(min(bucket.wait_s(), deadline - now))
                    continue
                for _ in range(allowed):
                    event = next(stream)
                    send_event(producer, event)
                    report.record(event)
                if now - refreshed >= _REFRESH_S:
                    show(now)
                    refreshed = now
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            signal.signal(signal.SIGTERM, terminated)
        report.send_s = time.monotonic() - started
        show(time.monotonic())
        flushing = time.monotonic()
        producer.flush()
        report.flush_s = time.monotonic() - flushing
    return report


def print_summary(report: SimulationReport, rate: float, console: Console) -> None:
    """The final summary: sent per kind, malformed count, achieved rate."""
    table = Table(title="Simulated events (synthetic data)", title_justify="left")
    table.add_column("kind")
    table.add_column("sent", justify="right")
    table.add_column("malformed", justify="right")
    for kind in EVENT_KINDS:
        table.add_row(kind, str(report.sent[kind]), str(report.malformed[kind]))
    table.add_row(
        "[bold]all[/]",
        f"[bold]{sum(report.sent.values())}[/]",
        f"[bold]{sum(report.malformed.values())}[/]",
    )
    console.print(table)
    malformed = sum(report.malformed.values())
    console.print(
        f"sent {report.total} events ({malformed} malformed, for the dead-letter "
        f"topic) in {report.send_s:.1f} s: {report.rate:.0f} events/s "
        f"(asked {rate:g}/s); all acknowledged {report.flush_s:.2f} s later",
        highlight=False,
    )
    console.print(
        f"seed {report.seed}, simulated clock {_clock(report.first_interval)} "
        f"→ {_clock(report.last_interval)}; re-running with this seed and start "
        "sends the same event ids (stored once)"
        + (" [yellow](interrupted)[/]" if report.interrupted else ""),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the `klimapuls` app."""

    @app.command(name="simulate")
    def simulate_command(
        rate: Annotated[
            float,
            typer.Option(
                "--rate", min=0.1, help="Events per second (all kinds together)."
            ),
        ] = 100.0,
        duration: Annotated[
            float,
            typer.Option("--duration", min=0.1, help="Seconds to run, then stop."),
        ] = 60.0,
        seed: Annotated[
            int, typer.Option(help="Seed: the same seed sends the same events.")
        ] = DEFAULT_SEED,
        start: Annotated[
            datetime,
            typer.Option(
                formats=["%Y-%m-%d"],
                metavar="DATE",
                show_default=DEFAULT_START.isoformat(),
                help="First day of the simulated clock, YYYY-MM-DD (history up "
                "to it is sent).",
            ),
        ] = datetime.combine(DEFAULT_START, datetime.min.time()),  # noqa: B008
    ) -> None:
        """Stream a seeded, realistic, synthetic mix of every event family.

        Counts from counting sites in all 29 municipalities (daily and weekly
        rhythm), bus fleet snapshots following Movia's public figures, yearly
        CO2 accounts with restatements, initiative status rounds, the seed
        targets and a few malformed events (rejected to the dead-letter topic).
        Paced at --rate events per second; stops after --duration seconds.
        """
        from klimapuls.cli import console, err_console
        from klimapuls.cli.common import command_settings

        report = run_simulate(
            command_settings(),
            rate=rate,
            duration_s=duration,
            seed=seed,
            start=start.date(),
            console=err_console,
        )
        print_summary(report, rate, console)
