"""`klimapuls changes`: every figure restated after a date, and what it changed.

The audit is the core's (`klimapuls.core.restatements.audit`), on the facts
of the database (loaded with the trips known on both dates) or folded from
JSONL files (`--offline`, as `klimapuls progress --offline` reads them), so
both give the same answer on the same events.

Exit codes: 0 fine; 1 some offline lines were invalid (reported on stderr,
the rest is still audited) or the database could not be used; 2 a usage
error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from klimapuls.cli.common import (
    OfflineFiles,
    OfflineFlag,
    check_migrated,
    check_offline_files,
    command_settings,
    date_option,
    json_option,
    parse_day,
    read_offline,
    scope_option,
)
from klimapuls.core.model import TONNES_CO2E
from klimapuls.core.progress import Facts
from klimapuls.core.reference import scope_codes
from klimapuls.core.restatements import Audit, audit

__all__ = ["database_audit", "register", "run_changes"]

EXIT_OK = 0
EXIT_INVALID_INPUT = 1
EXIT_USAGE = 2
_FILE_WIDTH = 160


def database_audit(
    database_url: str, since: date, until: date, scope: str | None
) -> Audit:
    """The audit of the facts stored in the database at `database_url`."""
    from klimapuls.storage.db import create_db_engine, in_transaction
    from klimapuls.storage.facts import load_facts

    engine = create_db_engine(database_url)
    try:
        facts: Facts = in_transaction(
            engine, lambda conn: load_facts(conn, (since, until))
        )
    finally:
        engine.dispose()
    return audit(facts, since, until, scope)


def _figure(value: float | None, unit: str) -> str:
    """A figure in full: restatements are often small against the total."""
    if value is None:
        return "—"
    if unit == "%":
        return f"{value:.1f} %"
    suffix = " t" if unit == TONNES_CO2E else ""
    return f"{value:,.1f}{suffix}" if value % 1 else f"{value:,.0f}{suffix}"


def _restatement_table(result: Audit) -> Table:
    table = Table(
        title=f"Figures restated after {result.since.isoformat()} "
        f"(up to {result.until.isoformat()})",
        title_justify="left",
    )
    for name in ("restated (UTC)", "figure", "scope", "year", "old", "new", "change"):
        table.add_column(name, justify="right" if name in ("old", "new") else "left")
    table.add_column("vintage")
    table.add_column("producer")
    for r in result.restatements:
        change = r.change_pct
        what = r.sector + (f" ({r.detail})" if r.detail else "")
        vintage = (
            f"{r.old_vintage} -> {r.new_vintage}"
            if r.old_vintage != r.new_vintage
            else str(r.new_vintage or "")
        )
        table.add_row(
            f"{r.restated_at:%Y-%m-%d %H:%M}Z",
            f"{r.family.split('_')[0]}: {what}",
            r.scope,
            r.period or str(r.year),
            _figure(r.old_value, r.unit),
            _figure(r.new_value, r.unit),
            "—" if change is None else f"{change:+.1f} %",
            vintage,
            r.producer,
        )
    return table


def _target_table(result: Audit) -> Table:
    table = Table(
        title="Targets whose status or forecast changed with them",
        title_justify="left",
    )
    for name in ("target", "scope", "status", "forecast", "why"):
        table.add_column(name)
    for change in result.targets:
        before, after = change.before, change.after
        table.add_row(
            after.target_id,
            after.scope,
            f"{before.status} -> {after.status}",
            f"{_figure(before.forecast_value, after.unit)} -> "
            f"{_figure(after.forecast_value, after.unit)}",
            change.summary(),
        )
    return table


def _print(result: Audit, console: Console) -> None:
    out = console if console.is_terminal else Console(width=_FILE_WIDTH)
    # Names and producers are user data: never markup or emoji.
    out.print(_restatement_table(result), markup=False, emoji=False)
    if not result.restatements:
        out.print("no figure was restated in that time", markup=False)
    out.print(_target_table(result), markup=False, emoji=False)
    if not result.targets:
        out.print("no target changed with a restatement", markup=False)


def run_changes(
    *,
    files: Sequence[Path],
    offline: bool,
    as_json: bool,
    since: date,
    until: date,
    scope: str | None,
    console: Console,
    err_console: Console,
) -> int:
    """Audit, print; return the exit code."""
    if scope is not None and scope not in scope_codes():
        err_console.print(
            f"unknown scope {scope!r}; one of {', '.join(scope_codes())}",
            markup=False,
        )
        return EXIT_USAGE
    exit_code = EXIT_OK
    if offline:
        report = read_offline(files, datetime.now(UTC))
        for issue in report.issues:
            err_console.print(
                str(issue),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if report.issues:
            exit_code = EXIT_INVALID_INPUT
        result = audit(report.facts, since, until, scope)
    else:
        url = check_migrated(command_settings().require_database_url())
        result = database_audit(url, since, until, scope)
    if as_json:
        sys.stdout.write(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
        sys.stdout.write("\n")
    else:
        _print(result, console)
    return exit_code


def register(app: typer.Typer) -> None:
    """Add `klimapuls changes` to the `klimapuls` app."""

    @app.command()
    def changes(
        since: Annotated[
            str,
            date_option(
                "--since", "List what was restated after this date (YYYY-MM-DD)."
            ),
        ],
        files: OfflineFiles = None,
        until: Annotated[
            str | None,
            date_option("--until", "Up to this date (YYYY-MM-DD); default: today."),
        ] = None,
        scope: Annotated[
            str | None,
            scope_option(
                "Only figures and targets of this scope (kommune code, "
                "1084, DK, movia)."
            ),
        ] = None,
        offline: OfflineFlag = False,
        as_json: Annotated[bool, json_option("Print JSON instead of tables.")] = False,
    ) -> None:
        """List every figure restated after --since and the targets it moved.

        For each restated figure: old and new value, vintage, producer. For
        each target whose status or forecast differs between the figures
        known on --since and those known on --until (both as of --until) and
        whose series was restated: before and after, and why.
        """
        from klimapuls.cli import console, err_console

        start = parse_day(since, "--since")
        end = parse_day(until, "--until") or date.today()
        assert start is not None  # noqa: S101 - a required option
        if end < start and until is None:
            raise typer.BadParameter(
                f"must not be after today ({end.isoformat()}) unless --until is given",
                param_hint="--since",
            )
        if end < start:
            raise typer.BadParameter("must not be before --since", param_hint="--until")
        paths = list(files or [])
        check_offline_files(paths, offline)
        for path in paths:
            if not path.is_file():
                raise typer.BadParameter(f"{path} is not a readable file")
        raise typer.Exit(
            run_changes(
                files=paths,
                offline=offline,
                as_json=as_json,
                since=start,
                until=end,
                scope=scope,
                console=console,
                err_console=err_console,
            )
        )
