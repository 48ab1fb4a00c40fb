"""`klimapuls import`: load the CSV files municipalities actually hold.

The conversion (CSV rows -> validated events, issues by row and column) is
pure and lives in `klimapuls.importers`; this module reads the file,
fills the envelope (`producer`, `reported_at`, a content-derived `event_id`,
so importing the same file twice stores each fact once), sends valid events
with the `EventProducer`, and sends invalid rows to the dead-letter topic.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from klimapuls.cli.common import escape, normalize_kind, plural
from klimapuls.core.deadletter import DeadLetter
from klimapuls.core.errors import KlimapulsError
from klimapuls.core.reference import municipalities
from klimapuls.importers import (
    IMPORT_KINDS,
    ImportedEvent,
    ImportIssue,
    ImportOptions,
    convert,
)
from klimapuls.importers.table import decode_table, delimiter_of, physical_lines

if TYPE_CHECKING:
    from klimapuls.producer import EventProducer

__all__ = ["ImportReport", "import_file", "register"]


@dataclass
class ImportReport:
    """What `import_file` did."""

    kind: str
    valid: int = 0
    sent: int = 0
    rows_rejected: set[int] = field(default_factory=set)
    issues: list[ImportIssue] = field(default_factory=list)
    rounds: dict[str, int] = field(default_factory=dict)
    #: `utf-8`, or `cp1252` for a Windows/Latin-1 export.
    encoding: str = "utf-8"
    #: False when the file holds no data rows at all.
    has_rows: bool = True


def _read_sites(path: Path) -> dict[str, str]:
    """A `site,kommune` file -> {site: kommune code}."""
    codes = {m.name.lower(): m.code for m in municipalities()}
    codes.update({m.code: m.code for m in municipalities()})
    result: dict[str, str] = {}
    text = decode_table(path.read_bytes(), str(path)).text
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter_of(text.split("\n", 1)[0]))
        for row in reader:
            site = (row.get("site") or "").strip()
            town = (row.get("kommune") or "").strip()
            code = codes.get(town.lower())
            if not site or code is None:
                raise KlimapulsError(
                    f"{path}: row {reader.line_num}: needs a site and a kommune "
                    f"(name or code of a municipality in the region), got "
                    f"{site!r}, {town!r}"
                )
            result[site] = code
    return result


def import_file(
    import_kind: str,
    path: Path,
    producer: EventProducer | None,
    *,
    producer_name: str = "klimapuls-import",
    options: ImportOptions | None = None,
    now: datetime | None = None,
    on_event: Callable[[], None] | None = None,
) -> ImportReport:
    """Convert `path`; send valid events (none when `producer` is None).

    Invalid rows are reported with row, column and reason, and sent to the
    dead-letter topic when a producer (an `EventProducer`) is given.
    """
    from klimapuls.producer.readers import complete_envelope

    now = now or datetime.now(UTC)
    kind = IMPORT_KINDS[import_kind]
    report = ImportReport(kind)
    decoded = decode_table(path.read_bytes(), str(path))
    text = decoded.text
    report.encoding = decoded.encoding
    if len(list(islice(filter(str.strip, physical_lines(text)), 2))) < 2:
        report.has_rows = False
        return report

    def envelope(event_kind: str, event: dict[str, Any]) -> dict[str, Any]:
        return complete_envelope(event_kind, event, producer_name, now)

    item: ImportedEvent
    for item in convert(import_kind, text, envelope, options):
        if on_event is not None:
            on_event()
        if item.event is None:
            report.issues.extend(item.issues)
            report.rows_rejected.update(item.rows)
            if producer is not None:
                producer.send_dead_letter(
                    DeadLetter.from_error(
                        item.error(),
                        kind=kind,
                        origin=f"{path.name}:{item.row}",
                        payload=item.raw,
                        rejected_by=producer.name,
                        rejected_at=now,
                    )
                )
            continue
        report.valid += 1
        if "round" in item.event:
            round_ = item.event["round"]
            report.rounds[round_] = report.rounds.get(round_, 0) + 1
        if producer is not None:
            producer.send(kind, item.event)
            report.sent += 1
    if producer is not None:
        producer.flush()
    return report


def _run(
    import_kind: str,
    file: Path,
    *,
    dry_run: bool,
    producer_name: str,
    options: ImportOptions,
    console: Console,
    err_console: Console,
) -> int:
    from klimapuls.cli.common import command_settings
    from klimapuls.producer import EventProducer

    producer = (
        None if dry_run else EventProducer(command_settings(), name=producer_name)
    )
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} events"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(
            *columns,
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        ) as bar:
            verb = "checking" if dry_run else "importing"
            task = bar.add_task(f"{verb} {escape(file.name)} ({import_kind})")
            report = import_file(
                import_kind,
                file,
                producer,
                producer_name=producer_name,
                options=options,
                on_event=lambda: bar.advance(task),
            )
    finally:
        if producer is not None:
            producer.close()
    if not report.has_rows:
        err_console.print(f"no events in {file} (no data rows)", markup=False)
        return 1
    if report.encoding != "utf-8":
        err_console.print(
            f"{file}: not UTF-8; read as Windows-1252/Latin-1", markup=False
        )
    for issue in report.issues:
        err_console.print(_issue_line(file, issue), markup=False, soft_wrap=True)
    verb = "valid (dry run, nothing sent)" if dry_run else "sent"
    count = report.valid if dry_run else report.sent
    per_round = (
        " (" + ", ".join(f"{r}: {n}" for r, n in sorted(report.rounds.items())) + ")"
        if report.rounds
        else ""
    )
    bad = len(report.rows_rejected)
    console.print(
        f"{import_kind} -> {report.kind}: {plural(count, 'event')} {verb}{per_round}, "
        f"{plural(bad, 'row')} rejected"
        + ("" if dry_run or not bad else " (sent to the dead-letter topic)"),
        markup=False,
        soft_wrap=True,
    )
    return 1 if bad else 0


def _issue_line(file: Path, issue: ImportIssue) -> str:
    """`FILE: row 9, column tonnes: reason` (a row-wide issue names no column)."""
    if issue.column == "$":
        return f"{file}: row {issue.row}: {issue.reason}"
    column = issue.column
    if not column.startswith("column "):
        column = f"column {column}"
    return f"{file}: row {issue.row}, {column}: {issue.reason}"


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the `klimapuls` app."""

    @app.command("import")
    def import_command(
        kind: Annotated[
            str,
            typer.Argument(
                metavar="KIND",
                help=f"File layout: {', '.join(IMPORT_KINDS)} (- or _ alike).",
                show_default=False,
            ),
        ],
        file: Annotated[
            Path,
            typer.Argument(
                metavar="FILE",
                exists=True,
                dir_okay=False,
                help="A .csv file (UTF-8, or a Windows-1252/Latin-1 export).",
                show_default=False,
            ),
        ],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Only convert and validate.")
        ] = False,
        producer_name: Annotated[
            str, typer.Option("--producer", help="`producer` of the events.")
        ] = "klimapuls-import",
        vintage: Annotated[
            str | None,
            typer.Option(
                help="co2-account: date the figures were computed, when the "
                "file has no `opgjort` column (YYYY-MM-DD)."
            ),
        ] = None,
        on_date: Annotated[
            str | None,
            typer.Option(
                "--date",
                help="fleet-list: date the list applies to, when the file has "
                "no `dato` column (YYYY-MM-DD).",
            ),
        ] = None,
        sites: Annotated[
            Path | None,
            typer.Option(
                exists=True,
                dir_okay=False,
                help="traffic-count: a `site,kommune` file for rows without "
                "a `kommune` cell.",
            ),
        ] = None,
    ) -> None:
        """Convert a municipality CSV file to events and send the valid ones.

        Layouts are described in docs/import-KIND.md. Each bad row is reported
        with its row number, column and reason and sent to the dead-letter
        topic; the exit code is 1 when any row was rejected.
        """
        from klimapuls.cli import console, err_console

        if file.suffix.lower() not in (".csv", ".txt"):
            raise typer.BadParameter(
                f"{file}: expected a .csv file (got {file.suffix or 'no ending'!r})",
                param_hint="FILE",
            )
        try:
            kind = normalize_kind(kind, tuple(IMPORT_KINDS), "layout")
        except KlimapulsError as exc:
            raise typer.BadParameter(str(exc), param_hint="KIND") from None
        try:
            options = ImportOptions(
                vintage=date.fromisoformat(vintage) if vintage else None,
                list_date=date.fromisoformat(on_date) if on_date else None,
                sites=_read_sites(sites) if sites else {},
            )
        except ValueError as exc:
            raise typer.BadParameter(
                f"{exc} (dates are YYYY-MM-DD)", param_hint="--vintage/--date"
            ) from None
        raise typer.Exit(
            _run(
                kind,
                file,
                dry_run=dry_run,
                producer_name=producer_name,
                options=options,
                console=console,
                err_console=err_console,
            )
        )
