"""`klimapuls bench`: the benchmarks of a checkout (`bench/`).

`bench/pipeline.py` by default, `bench/queries.py` with `--queries`.

The benchmark code is not shipped in the package (it starts its own stack
and measures it); this command runs it from the checkout the package was
installed from, and says so when there is none.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from klimapuls.core.errors import KlimapulsError

__all__ = ["pipeline_script", "register", "run_script"]


def pipeline_script(name: str = "pipeline.py") -> Path:
    """`bench/<name>` of the checkout, or a `KlimapulsError`."""
    script = Path(__file__).resolve().parents[3] / "bench" / name
    if not script.is_file():
        raise KlimapulsError(
            f"klimapuls bench runs from a checkout of the project (bench/{name} "
            "was not found next to the installed package)"
        )
    return script


def run_script(script: Path, args: list[str]) -> int:
    """Run a benchmark script to its end; a Ctrl-C (or SIGTERM) stops it, once.

    The script starts servers of its own (a broker, PostgreSQL, the
    services) and stops them when interrupted, which takes seconds. It runs
    in a session of its own, so a Ctrl-C at the terminal reaches this
    process alone, which hands the script one SIGINT and waits for it:
    `subprocess.run` would kill it 0.25 s after the Ctrl-C, mid-stop, and
    leave its PostgreSQL running on a temporary folder nobody removes.
    """
    script_run = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(script), *args], start_new_session=True
    )
    asked = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal asked
        if not asked:  # a second one would only cut the script's stop short
            asked = True
            script_run.send_signal(signal.SIGINT)

    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, stop) for signum in stops}
    try:
        return script_run.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def register(app: typer.Typer) -> None:
    """Add `klimapuls bench` to the `klimapuls` app."""

    @app.command()
    def bench(
        events: Annotated[
            int, typer.Option(min=100, help="Events in the backlog.")
        ] = 200_000,
        live_rate: Annotated[
            float, typer.Option(min=1, help="Events per second offered live.")
        ] = 5_000.0,
        live_seconds: Annotated[
            float, typer.Option(min=0.5, help="Seconds of live load.")
        ] = 10.0,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object.")
        ] = False,
        queries: Annotated[
            bool,
            typer.Option(
                "--queries",
                help="Instead: time target progress and every board query on "
                "a production-sized database (bench/queries.py).",
            ),
        ] = False,
        sites: Annotated[
            int, typer.Option(min=1, help="With --queries: counting sites.")
        ] = 500,
        days: Annotated[
            int,
            typer.Option(min=1, max=366, help="With --queries: days of counts."),
        ] = 365,
        runs: Annotated[
            int, typer.Option(min=1, help="With --queries: timed runs per query.")
        ] = 5,
        backfill: Annotated[
            int | None,
            typer.Option(
                min=100,
                help="Instead: import ROWS 15-minute counts into a running stack "
                "with `klimapuls import`, then the same file again "
                "(bench/backfill.py).",
            ),
        ] = None,
    ) -> None:
        """Measure the pipeline on a fresh embedded stack against a plain consumer.

        Prints events/s of a backlog, the ceiling (a plain consumer with binary
        COPY) and their ratio, live latency p50/p99, peak memory per process,
        and `lost` / `duplicates` counted by event id (exit 1 unless both are 0).
        With --queries instead: the median time of target progress and of
        every board query on SITES sites x DAYS days of 15-minute counts and
        30 years of accounts (bench/queries.py). With --backfill ROWS: a year
        of counts imported into a running stack, counted by event id, then
        imported again, which must store nothing (bench/backfill.py).
        """
        if backfill is not None:
            chosen = ["--rows", str(backfill)] + (["--json"] if as_json else [])
            raise typer.Exit(run_script(pipeline_script("backfill.py"), chosen))
        if queries:
            chosen = ["--sites", str(sites), "--days", str(days), "--runs", str(runs)]
            if as_json:
                chosen.append("--json")
            raise typer.Exit(run_script(pipeline_script("queries.py"), chosen))
        args = [
            "--events",
            str(events),
            "--live-rate",
            str(live_rate),
            "--live-seconds",
            str(live_seconds),
        ]
        if as_json:
            args.append("--json")
        raise typer.Exit(run_script(pipeline_script(), args))
