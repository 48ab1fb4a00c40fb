"""`klimapuls report --html PATH`: the boards' main charts as one offline page.

For machines without Grafana. Facts come from DATABASE_URL
(`storage.facts.load_facts`) or, with `--offline FILE...`, from event files
(`core.fold.EventFold`, through `klimapuls progress`'s reader); both are
evaluated by `core.progress.evaluate_all`, so the numbers are the same.
`klimapuls up --demo` writes one with `write_demo_report`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine

from klimapuls.cli.common import (
    OfflineFiles,
    OfflineFlag,
    check_offline_files,
    command_settings,
    read_offline,
)
from klimapuls.core.reference import municipality_codes
from klimapuls.report import ReportInput, render_report
from klimapuls.storage.db import in_transaction
from klimapuls.storage.facts import load_facts

__all__ = ["register", "run_report", "write_demo_report", "write_report"]

EXIT_OK = 0
EXIT_INVALID_INPUT = 1
EXIT_USAGE = 2


def write_report(path: Path, data: ReportInput) -> int:
    """Render `data` to `path`; return the page's size in bytes."""
    page = render_report(data).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page)
    return len(page)


def write_demo_report(engine: Engine, data_dir: Path, console: Console) -> Path:
    """The overview report of the demo database under `data_dir`; prints its path."""
    path = (data_dir / "report" / "klimapuls-report.html").resolve()
    facts = in_transaction(engine, load_facts)
    write_report(path, ReportInput(facts, date.today(), "database (demo)"))
    console.print(
        f"HTML report (synthetic demo data): {path}",
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=True,
    )
    return path


def run_report(
    *,
    html: Path,
    municipality: str | None,
    as_of: date | None,
    offline: Sequence[Path],
    console: Console,
    err_console: Console,
) -> int:
    """Load, render, write; return the exit code."""
    if municipality is not None and municipality not in municipality_codes():
        err_console.print(
            f"unknown municipality {municipality!r}; one of the 29 kommune codes, "
            "e.g. 101",
            markup=False,
            emoji=False,
        )
        return EXIT_USAGE
    started = time.monotonic()
    exit_code = EXIT_OK
    if offline:
        report = read_offline(offline)
        for issue in report.issues:
            err_console.print(
                f"{issue.file}:{issue.line}: {issue.field}: {issue.reason}",
                markup=False,
                emoji=False,
                highlight=False,
                soft_wrap=True,
            )
        exit_code = EXIT_INVALID_INPUT if report.issues else EXIT_OK
        facts, source = (
            report.facts,
            (
                f"{len(offline)} hændelsesfil{'er' if len(offline) != 1 else ''} "
                "(offline)"
            ),
        )
    else:
        from klimapuls.storage.db import create_db_engine

        engine = create_db_engine(command_settings().require_database_url())
        try:
            facts = in_transaction(engine, load_facts)
        finally:
            engine.dispose()
        source = "databasen"
    day = as_of or date.today()
    size = write_report(html, ReportInput(facts, day, source, municipality))
    console.print(
        f"wrote {html} ({size / 1024:.0f} KiB, {time.monotonic() - started:.1f} s)",
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=True,
    )
    return exit_code


def register(app: typer.Typer) -> None:
    """Add `klimapuls report` to the `klimapuls` app."""

    @app.command()
    def report(
        html: Annotated[
            Path,
            typer.Option(
                "--html",
                metavar="PATH",
                dir_okay=False,
                help="Where to write the page.",
            ),
        ],
        municipality: Annotated[
            str | None,
            typer.Option(
                "--municipality", metavar="CODE", help="One municipality's page."
            ),
        ] = None,
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of", metavar="DATE", help="As on this date (YYYY-MM-DD)."
            ),
        ] = None,
        files: OfflineFiles = None,
        offline: OfflineFlag = False,
    ) -> None:
        """Write one self-contained HTML page: the overview or one municipality.

        Charts (inline SVG), the status of every target and the coverage,
        from DATABASE_URL or, with --offline FILE..., from JSONL event files
        (several files, any family, as `progress --offline`); opens without
        network access.
        """
        from klimapuls.cli import console, err_console

        day = None
        if as_of is not None:
            try:
                day = date.fromisoformat(as_of)
            except ValueError:
                raise typer.BadParameter(
                    f"{as_of!r} is not a date (YYYY-MM-DD)", param_hint="--as-of"
                ) from None
        paths = list(files or [])
        check_offline_files(paths, offline)
        for path in paths:
            if not path.is_file():
                raise typer.BadParameter(
                    f"{path} is not a readable file", param_hint="FILE"
                )
        raise typer.Exit(
            run_report(
                html=html,
                municipality=municipality,
                as_of=day,
                offline=paths,
                console=console,
                err_console=err_console,
            )
        )
