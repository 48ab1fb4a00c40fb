"""`klimapuls produce`: validate a file of events and send the valid ones."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from klimapuls.cli.common import escape
from klimapuls.producer import EventProducer, ProduceReport, produce_file
from klimapuls.settings import Settings

__all__ = ["run_produce"]


def _report(report: ProduceReport, file: Path, err_console: Console) -> None:
    for issue in report.issues:
        # One line per issue, as written (no markup), so it can be grepped.
        err_console.print(
            f"{file}:{issue.line}: {issue.field}: {issue.reason}",
            markup=False,
            soft_wrap=True,
        )


def run_produce(
    settings: Settings,
    kind: str,
    file: Path,
    *,
    dry_run: bool,
    producer_name: str,
    console: Console,
    err_console: Console,
) -> int:
    """Validate (and unless `dry_run`, send) every line; exit code 1 if any was bad."""
    producer = None if dry_run else EventProducer(settings, name=producer_name)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} lines"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(
            *columns,
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        ) as bar:
            verb = "validating" if dry_run else "sending"
            task = bar.add_task(f"{verb} {escape(file.name)}")
            report = produce_file(
                kind,
                file,
                producer,
                producer_name=producer_name,
                on_line=lambda: bar.advance(task),
            )
    finally:
        if producer is not None:
            producer.close()
    _report(report, file, err_console)
    if report.valid == 0 and not report.issues:
        err_console.print(f"no events in {file}", markup=False)
        return 1
    verb = "valid (dry run, nothing sent)" if dry_run else "sent"
    count = report.valid if dry_run else report.sent
    console.print(
        f"{kind}: {count:,} {verb}, {report.invalid_lines:,} invalid"
        + (
            ""
            if dry_run or not report.invalid_lines
            else " (sent to the dead-letter topic)"
        ),
        markup=False,
    )
    return 1 if report.invalid_lines else 0
