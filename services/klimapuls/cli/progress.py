"""`klimapuls progress`: where every target stands (database or offline files).

Both modes recompute with the same code (`klimapuls.core.progress`): the
database mode on the facts its services stored (target versions, account
figures, fleet snapshots, yearly trips), the offline mode on the same facts
folded in memory from JSONL event files with the same identity rules. So the
same events give the same numbers, whichever way they are read.

Exit codes: 0 all fine; 1 some offline lines were invalid (they are reported
on stderr and skipped, the rest is still evaluated and printed), or the
database could not be used; 2 a usage error (bad option, unknown target or
scope, a file that cannot be read).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Engine

from klimapuls.cli.render import progress_table
from klimapuls.core.fold import EventFold, read_jsonl
from klimapuls.core.identity import Verdict
from klimapuls.core.initiatives import (
    Initiative,
    MissingReport,
    missing_reports,
    without_tovholder,
)
from klimapuls.core.progress import Facts, evaluate_all
from klimapuls.core.reference import scope_codes
from klimapuls.storage.db import in_transaction
from klimapuls.storage.facts import load_facts

__all__ = [
    "OfflineReport",
    "database_rows",
    "read_offline",
    "register",
    "run_progress",
]

EXIT_OK = 0
EXIT_INVALID_INPUT = 1
EXIT_USAGE = 2
_FILE_WIDTH = 160


@dataclass(frozen=True)
class LineIssue:
    """Why one input line was skipped."""

    file: Path
    line: int
    field: str
    reason: str


@dataclass
class OfflineReport:
    """What reading the offline files gave: the facts and the skipped lines.

    `missing` and `without_tovholder` are the initiatives' findings, from the
    folded reports with the same core rules as the initiatives service.
    """

    facts: Facts
    events: int = 0
    duplicates: int = 0
    issues: list[LineIssue] = field(default_factory=list)
    missing: list[MissingReport] = field(default_factory=list)
    without_tovholder: list[Initiative] = field(default_factory=list)

    def initiatives_line(self) -> str:
        """The initiatives' findings in one line."""
        newest: dict[str, str] = {}
        for m in self.missing:
            newest[m.programme] = max(newest.get(m.programme, m.round), m.round)
        latest = max(newest.values(), default=None)
        in_latest = sum(1 for m in self.missing if m.round == latest)
        where = f", {in_latest} in round {latest}" if latest else ""
        return (
            f"Initiatives: {len(self.missing)} reports missing{where}; "
            f"{len(self.without_tovholder)} without a tovholder"
        )


def read_offline(files: Sequence[Path]) -> OfflineReport:
    """Fold every valid line of `files` (in order); collect the invalid ones."""
    fold = EventFold()
    issues: list[LineIssue] = []
    events = duplicates = 0
    for path in files:
        with path.open(encoding="utf-8-sig") as handle:
            for line in read_jsonl(handle):
                error = line.error
                if error is None and line.kind is not None and line.event is not None:
                    judgement = fold.judge(line.kind, line.event)
                    if judgement.verdict is not Verdict.REJECTED:
                        events += 1
                        duplicates += judgement.verdict is Verdict.DUPLICATE
                        continue
                    error = judgement.error
                if error is not None:
                    issues.extend(
                        LineIssue(path, line.number, i.field, i.reason)
                        for i in error.issues
                    )
    listed = fold.initiatives()
    return OfflineReport(
        fold.facts(),
        events,
        duplicates,
        issues,
        missing_reports(listed, fold.reports),
        without_tovholder(listed, fold.reports),
    )


def _parse_as_of(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint="--as-of"
        ) from None


def database_rows(engine: Engine, as_of: date | None) -> list[dict[str, Any]]:
    """Every target's progress, recomputed from the stored facts."""
    facts = in_transaction(engine, load_facts)
    return [p.as_json() for p in evaluate_all(facts, as_of or date.today())]


def _print_issues(report: OfflineReport, err_console: Console) -> None:
    for issue in report.issues:
        err_console.print(
            f"{issue.file}:{issue.line}: [bold]{issue.field}[/]: {issue.reason}",
            highlight=False,
            soft_wrap=True,
        )
    skipped = sorted({(i.file, i.line) for i in report.issues})
    note = f"{report.events} events read, {len(skipped)} invalid lines skipped"
    if report.duplicates:
        note += f", {report.duplicates} duplicates counted once"
    err_console.print(note, highlight=False, soft_wrap=True)


def run_progress(
    *,
    files: Sequence[Path],
    offline: bool,
    as_json: bool,
    as_of: date | None,
    target_id: str | None,
    scope: str | None,
    console: Console,
    err_console: Console,
) -> int:
    """Evaluate, filter and print; return the exit code."""
    if scope is not None and scope not in scope_codes():
        err_console.print(
            f"[red]unknown scope {scope!r}[/]; one of {', '.join(scope_codes())}"
        )
        return EXIT_USAGE
    exit_code = EXIT_OK
    if offline:
        report = read_offline(files)
        _print_issues(report, err_console)
        if report.issues:
            exit_code = EXIT_INVALID_INPUT
        day = as_of or date.today()
        rows = [p.as_json() for p in evaluate_all(report.facts, day)]
        source = f"{len(files)} file(s), offline"
        err_console.print(report.initiatives_line(), highlight=False, soft_wrap=True)
    else:
        from klimapuls.settings import Settings
        from klimapuls.storage.db import create_db_engine

        engine = create_db_engine(Settings().require_database_url())
        try:
            rows = database_rows(engine, as_of)
        finally:
            engine.dispose()
        source = "database"
    if target_id is not None:
        rows = [r for r in rows if r["target_id"] == target_id]
        if not rows:
            err_console.print(f"[red]unknown target {target_id!r}[/]")
            return EXIT_USAGE
    if scope is not None:
        rows = [r for r in rows if r["scope"] == scope]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    else:
        day_text = (as_of or date.today()).isoformat()
        table = progress_table(rows, f"Target progress as of {day_text} ({source})")
        # A pipe or file gets room for the whole table, not 80 columns.
        out = console if console.is_terminal else Console(width=_FILE_WIDTH)
        out.print(table)
    return exit_code


def register(app: typer.Typer) -> None:
    """Add `klimapuls progress` to the `klimapuls` app."""

    @app.command()
    def progress(
        files: Annotated[
            list[Path] | None,
            typer.Argument(
                help="With --offline: JSONL event files (any family, by `schema`).",
                show_default=False,
            ),
        ] = None,
        offline: Annotated[
            bool,
            typer.Option(
                "--offline",
                help="Read FILE... instead of the database (no server needed).",
            ),
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print a JSON list instead of a table.")
        ] = False,
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of",
                metavar="DATE",
                help="Recompute as on this date (YYYY-MM-DD); default: today.",
                show_default=False,
            ),
        ] = None,
        target_id: Annotated[
            str | None,
            typer.Option("--target", metavar="ID", help="Only this target."),
        ] = None,
        scope: Annotated[
            str | None,
            typer.Option(
                "--scope",
                metavar="CODE",
                help="Only targets of this scope (kommune code, 1084, DK, movia).",
            ),
        ] = None,
    ) -> None:
        """Show whether every target is on track: status, path, forecast, gap.

        Reads DATABASE_URL, or with --offline the given JSONL files (events of
        any family; the seed targets are included). Invalid lines are
        reported on stderr (file:line: field: reason) and skipped. Exit codes:
        0 fine, 1 invalid input lines or database trouble, 2 usage error.
        """
        from klimapuls.cli import console, err_console

        day = _parse_as_of(as_of)
        paths = list(files or [])
        if offline and not paths:
            raise typer.BadParameter("give at least one JSONL file", param_hint="FILE")
        if paths and not offline:
            raise typer.BadParameter(
                "files are read only with --offline", param_hint="FILE"
            )
        for path in paths:
            if not path.is_file():
                raise typer.BadParameter(f"{path} is not a readable file")
        raise typer.Exit(
            run_progress(
                files=paths,
                offline=offline,
                as_json=as_json,
                as_of=day,
                target_id=target_id,
                scope=scope,
                console=console,
                err_console=err_console,
            )
        )
