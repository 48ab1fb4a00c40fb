"""`klimapuls bench`: the benchmarks of a checkout (`bench/`).

`bench/pipeline.py` by default, `bench/queries.py` with `--queries`.

The benchmark code is not shipped in the package (it starts its own stack
and measures it); this command runs it from the checkout the package was
installed from, and says so when there is none.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from klimapuls.core.errors import KlimapulsError

__all__ = ["pipeline_script", "register"]


def pipeline_script(name: str = "pipeline.py") -> Path:
    """`bench/<name>` of the checkout, or a `KlimapulsError`."""
    script = Path(__file__).resolve().parents[3] / "bench" / name
    if not script.is_file():
        raise KlimapulsError(
            f"klimapuls bench runs from a checkout of the project (bench/{name} "
            "was not found next to the installed package)"
        )
    return script


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
            done = subprocess.run(  # noqa: S603 - our own script
                [sys.executable, str(pipeline_script("backfill.py")), *chosen],
                check=False,
            )
            raise typer.Exit(done.returncode)
        if queries:
            chosen = ["--sites", str(sites), "--days", str(days), "--runs", str(runs)]
            if as_json:
                chosen.append("--json")
            done = subprocess.run(  # noqa: S603 - our own script
                [sys.executable, str(pipeline_script("queries.py")), *chosen],
                check=False,
            )
            raise typer.Exit(done.returncode)
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
        done = subprocess.run(  # noqa: S603 - our own script
            [sys.executable, str(pipeline_script()), *args], check=False
        )
        raise typer.Exit(done.returncode)
