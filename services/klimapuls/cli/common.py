"""What every `klimapuls` command shares: consoles, settings, servers, wording.

- Consoles never turn user data into markup or emoji (`events.jsonl:100:`
  stays as written) and do not hard-wrap text when output is not a
  terminal, so log files and pipes get whole lines; the stderr console
  never hard-wraps, so an error line is one line even on a terminal.
- `command_settings` builds the settings of an entry point and, when
  `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` are unset, finds the embedded
  stack that `klimapuls up` runs for the current data folder.
- `check_database` turns a malformed or unreachable `DATABASE_URL` into one
  line naming it, before any driver error can surface.
- The options of the commands that read the database or, with `--offline`,
  JSONL event files (`OfflineFiles`, `OfflineFlag`, `date_option`, ...),
  the checks of their dates and files, and `read_offline`, which folds
  those files as the services would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from klimapuls.core.errors import (
    ConfigurationError,
    EventValidationError,
    FieldIssue,
    KlimapulsError,
)
from klimapuls.core.fold import EventFold, InputLine, read_jsonl, read_value
from klimapuls.core.identity import Verdict
from klimapuls.core.initiatives import (
    Initiative,
    MissingReport,
    missing_reports,
    without_tovholder,
)
from klimapuls.core.knowledge import known_on, was_known
from klimapuls.core.progress import Facts
from klimapuls.importers.table import text_lines
from klimapuls.producer.readers import json_text, json_values
from klimapuls.settings import Settings, load_settings
from klimapuls.stack.state import running_stack

__all__ = [
    "NOT_MIGRATED",
    "KlimapulsConsole",
    "LineIssue",
    "OfflineFiles",
    "OfflineFlag",
    "OfflineReport",
    "OptionError",
    "check_database",
    "check_migrated",
    "check_offline_files",
    "command_settings",
    "date_option",
    "escape",
    "json_option",
    "normalize_kind",
    "offline_lines",
    "parse_database_url",
    "parse_day",
    "plural",
    "read_offline",
    "scope_option",
]

_CONNECT_TIMEOUT_S = 5


class KlimapulsConsole(Console):
    """A rich console that prints user data as it is.

    No emoji codes (`:100:`), no highlighting; markup only where our own
    text asks for it (user values are passed through `escape`); and soft
    wrapping whenever the output is not a terminal. With `wrap=False` (the
    stderr console: errors, skipped lines, notes) text is never hard-wrapped,
    not even on a terminal, so a path or a message is never cut in two.
    """

    def __init__(self, *, wrap: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)
        self._wrap = wrap

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: D102
        if kwargs.get("soft_wrap") is None:
            kwargs["soft_wrap"] = not (self._wrap and self.is_terminal)
        kwargs.setdefault("emoji", False)
        super().print(*objects, **kwargs)


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 report`, `2 reports` (`many` for irregular plurals)."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def normalize_kind(text: str, kinds: tuple[str, ...] | list[str], what: str) -> str:
    """A kind as either spelling (`co2_account` or `co2-account`), or a usage error."""
    wanted = text.strip().lower().replace("-", "_")
    for kind in kinds:
        if kind.replace("-", "_") == wanted:
            return kind
    raise ConfigurationError(
        f"unknown {what} {text!r}; one of {', '.join(kinds)} (with - or _ alike)"
    )


def command_settings(
    data_dir: Path | None = None, *, quiet: bool = False, discover: bool = True
) -> Settings:
    """The settings of a command; the running embedded stack fills what is unset.

    When `DATABASE_URL` or `KAFKA_BOOTSTRAP_SERVERS` is unset and `klimapuls
    up` runs for this data folder, its addresses (written to
    `DATA_DIR/stack.json`) are used, and a note says so on stderr. A
    malformed variable is an `OptionError` naming it (exit code 2).
    """
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        raise OptionError(str(exc)) from None  # a bad setting: exit code 2
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    if not discover or (
        settings.database_url is not None and settings.kafka.bootstrap_servers
    ):
        return settings
    state = running_stack(settings.data_dir)
    if state is None:
        return settings
    updated = state.fill(settings)
    if updated is not settings and not quiet:
        from klimapuls.cli import err_console

        err_console.print(
            f"using the stack of `klimapuls up` (pid {state.up_pid}) in "
            f"{escape(str(settings.data_dir))}",
            style="dim",
        )
    return updated


def masked(url: str) -> str:
    """A database URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"
    except ValueError:  # a port that is not a number: hide what may be one
        return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


class OptionError(ConfigurationError):
    """A bad option or setting of a command: one line, exit code 2."""


def parse_database_url(url: str) -> URL:
    """`url` parsed, if it is a PostgreSQL URL; else a `ConfigurationError`."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"DATABASE_URL {url[:80]!r} is not a database URL; give one such as "
            "postgresql+psycopg://user:pass@host:5432/klimapuls"
        ) from None
    except ValueError:
        # SQLAlchemy reads one host: `h1:5432,h2:5433` is a port it cannot read.
        raise ConfigurationError(
            f"DATABASE_URL {masked(url)[:80]!r} has a port that is not a number "
            "(several hosts go as ?host=h1:5432&host=h2:5433)"
        ) from None
    if not parsed.drivername.startswith(("postgresql", "postgres")):
        raise ConfigurationError(
            f"DATABASE_URL uses {parsed.drivername!r}; Klimapuls needs PostgreSQL "
            "(postgresql+psycopg://user:pass@host:5432/klimapuls)"
        )
    return parsed


def check_database(url: str) -> str:
    """`url` once it parses and a server answers on it; else one clear error."""
    parsed = parse_database_url(url)
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, connect_timeout=_CONNECT_TIMEOUT_S):
            pass
    except psycopg.Error as exc:
        raise KlimapulsError(
            f"cannot reach the database at {masked(url)} (DATABASE_URL): "
            f"{_connect_reason(exc)}"
        ) from None
    except ValueError:  # a host name IDNA cannot encode (`a..b`)
        raise ConfigurationError(
            f"DATABASE_URL {masked(url)} has a host name that is not valid "
            f"({parsed.host!r})"
        ) from None
    return url


def _connect_reason(exc: psycopg.Error) -> str:
    """The driver's reason a connection failed, without what the URL says.

    libpq writes `connection failed: connection to server at "HOST", port
    PORT failed: WHY` (with a hint on the next line): only WHY is news next
    to the URL, and the line stays short enough for a terminal.
    """
    text = str(exc).strip()
    if not text:
        return "no answer"
    # Several hosts: libpq lists each attempt; each is named with its reason.
    attempts = _ATTEMPT.findall(text)
    if len(attempts) > 1:
        return "; ".join(f"{h}:{p}: {_why(line)}" for h, p, line in attempts)
    return _why(text.splitlines()[0]) or text.splitlines()[0]


#: One attempt of several in libpq's message: `- host: 'H', port: 'P', ...`.
_ATTEMPT = re.compile(r"^- host: '([^']*)', port: '([^']*)'(.*)$", re.MULTILINE)


def _why(line: str) -> str:
    return line.rpartition(" failed: ")[2].removeprefix("FATAL:").strip()


#: What a command that reads the database says when its schema is not current.
NOT_MIGRATED = "database is not migrated: run klimapuls db upgrade"


def check_migrated(url: str) -> str:
    """`url` once it is reachable and its schema is at head; else one line."""
    from klimapuls.storage.db import create_db_engine, is_migrated

    engine = create_db_engine(check_database(url))
    try:
        migrated = is_migrated(engine)
    finally:
        engine.dispose()
    if not migrated:
        raise KlimapulsError(NOT_MIGRATED)
    return url


# -- commands that read the database or, with --offline, JSONL files --------

#: `FILE...`: the JSONL event files read with `--offline`.
OfflineFiles = Annotated[
    list[Path] | None,
    typer.Argument(
        help="With --offline: event files (any family, by `schema`): JSONL, "
        "or .json holding one event or a list.",
        show_default=False,
    ),
]

#: `--offline`: read `FILE...` instead of the database.
OfflineFlag = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Read FILE... instead of the database (no server needed).",
    ),
]


def date_option(name: str, help: str) -> Any:
    """A `--NAME DATE` option (YYYY-MM-DD as text; see `parse_day`)."""
    return typer.Option(name, metavar="DATE", help=help, show_default=False)


def json_option(help: str) -> Any:
    """The `--json` flag, with what the command prints instead."""
    return typer.Option("--json", help=help)


def scope_option(help: str) -> Any:
    """The `--scope CODE` option (a kommune code, 1084, DK, movia)."""
    return typer.Option("--scope", metavar="CODE", help=help)


def parse_day(text: str | None, option: str) -> date | None:
    """The date `text` (YYYY-MM-DD) given to `option`, or a usage error."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


def check_offline_files(paths: Sequence[Path], offline: bool) -> None:
    """Files with `--offline` and only with it, or a usage error."""
    if offline and not paths:
        raise typer.BadParameter("give at least one JSONL file", param_hint="FILE")
    if paths and not offline:
        raise typer.BadParameter(
            "files are read only with --offline", param_hint="FILE"
        )


@dataclass(frozen=True)
class LineIssue:
    """Why one input line was skipped."""

    file: Path
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


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
    fold: EventFold | None = None

    def known_on(self, day: date) -> OfflineReport:
        """The facts and the initiatives' findings as they were known on `day`.

        Only the status reports reported by then count, and only the
        initiatives listed by then (their `since`).
        """
        facts = known_on(self.facts, day)
        if self.fold is None:
            return replace(self, facts=facts)
        reports = [r for r in self.fold.reports if was_known(r.reported_at, day)]
        listed = [
            i
            for i in self.fold.initiatives(reports)
            if i.since is None or i.since <= day
        ]
        return replace(
            self,
            facts=facts,
            missing=missing_reports(listed, reports),
            without_tovholder=without_tovholder(listed, reports),
        )

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


def offline_lines(path: Path, now: datetime | None = None) -> Iterator[InputLine]:
    """The events of an `--offline` file, validated, numbered by line.

    A `.json` file is one JSON document, an event or a list of events (read
    as `klimapuls produce` reads it); any other file is JSON Lines, one
    event a line. A line that is not UTF-8 is an error of its own; the rest
    is still read. Raises `FileEncodingError` for a file that is not text.
    """
    data = path.read_bytes()
    lines = text_lines(data, str(path))
    for bad in lines:
        if bad.problem is not None:
            yield InputLine(
                bad.number,
                None,
                None,
                EventValidationError([FieldIssue("$", bad.problem)]),
            )
    if path.suffix.lower() == ".json":
        for number, raw, parsed in json_values(json_text(data, str(path))):
            if isinstance(parsed, EventValidationError):
                yield InputLine(number, None, None, parsed, raw)
            else:
                yield read_value(number, raw, parsed, now)
        return
    # Undecodable lines stay as blank ones, so line numbers still match.
    yield from read_jsonl((t.text or "" for t in lines), now)


def read_offline(files: Sequence[Path], now: datetime | None = None) -> OfflineReport:
    """Fold every valid line of `files` (in order); collect the invalid ones.

    `now` is the clock the validators bound `reported_at` with, as the
    services' clock does.
    """
    fold = EventFold()
    issues: list[LineIssue] = []
    events = duplicates = 0
    for path in files:
        for line in offline_lines(path, now):
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
        fold,
    )
