"""The `klimapuls` command: run the platform, produce events, inspect progress.

A user's mistake never ends in a traceback: `main` turns every Klimapuls
error (bad configuration, unreachable servers, unreadable files) into one
line naming the problem and exit code 1; usage errors exit 2. New command
families live in their own modules and add themselves in
`_register_commands`; `tests/cli/test_bad_input.py` runs every command
against a battery of bad inputs and fails on a command it has no entry for.
"""

from __future__ import annotations

import logging
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer._click import exceptions as click_exceptions

from klimapuls.cli.common import (
    KlimapulsConsole,
    OptionError,
    check_database,
    command_settings,
    escape,
    normalize_kind,
    plural,
)
from klimapuls.core.errors import KlimapulsError
from klimapuls.core.validation import EVENT_KINDS
from klimapuls.process import stops_not_dropped

__all__ = ["app", "cli_command", "console", "err_console", "main"]

app = typer.Typer(
    name="klimapuls",
    help=(
        "Klimapuls: climate and mobility monitoring for Region Hovedstaden.\n\n"
        "Configuration comes from environment variables (KAFKA_BOOTSTRAP_SERVERS, "
        "DATABASE_URL, KLIMAPULS_*); see the README."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema and reference data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")

console = KlimapulsConsole()
err_console = KlimapulsConsole(stderr=True, wrap=False)

_DEFAULT_DATA_DIR = Path(".klimapuls")


def _version(value: bool) -> None:
    if value:
        console.print(f"klimapuls {metadata.version('klimapuls')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Klimapuls: climate and mobility monitoring for Region Hovedstaden."""


@app.command()
def up(
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Also feed the seeded synthetic demo data set."),
    ] = False,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Exit 0 once the demo data are processed, after a clean shutdown.",
        ),
    ] = False,
    data_dir: Annotated[
        Path,
        typer.Option(
            envvar="KLIMAPULS_DATA_DIR",
            file_okay=False,
            help="Folder of the embedded stack (data, logs, stack.json).",
        ),
    ] = _DEFAULT_DATA_DIR,
    seed: Annotated[int, typer.Option(help="Seed of the demo data.")] = 2045,
    demo_days: Annotated[
        int,
        typer.Option(
            min=1, max=366, help="Days of hourly mobility counts in the demo data."
        ),
    ] = 1,
    timeout: Annotated[
        float,
        typer.Option(min=1, help="With --once: give up after this many seconds (> 0)."),
    ] = 600.0,
    drain_timeout: Annotated[
        float,
        typer.Option(
            min=0,
            help="On Ctrl-C/SIGTERM: wait at most this long for the services to "
            "process what is in the embedded broker's topics.",
        ),
    ] = 60.0,
) -> None:
    """Start the platform: broker, database, topics, schema and services.

    Without KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL it starts an embedded Tansu
    broker and PostgreSQL under the data folder; with them, it uses those.
    Services are supervised (restarted when they stop). Runs until Ctrl-C or
    SIGTERM (it then drains the topics and stops everything), or with --once
    until the demo data are processed.
    """
    from klimapuls.cli.up import run_up

    if data_dir.exists() and not data_dir.is_dir():
        raise typer.BadParameter(f"{data_dir} is not a folder", param_hint="--data-dir")
    settings = command_settings(data_dir, quiet=True, discover=False)
    if settings.database_url is not None:
        check_database(settings.require_database_url())
    if settings.kafka.bootstrap_servers:
        from klimapuls.producer import check_reachable

        check_reachable(settings)
    raise typer.Exit(
        run_up(
            settings,
            demo=demo,
            once=once,
            seed=seed,
            demo_days=demo_days,
            timeout_s=timeout,
            drain_timeout_s=drain_timeout,
            console=console,
        )
    )


@app.command()
def produce(
    kind: Annotated[
        str,
        typer.Argument(
            metavar="KIND",
            help=f"Event family: {', '.join(EVENT_KINDS)} (- or _ alike).",
            show_default=False,
        ),
    ],
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="A .csv, .jsonl or .json file.",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only validate; send nothing.")
    ] = False,
    producer_name: Annotated[
        str,
        typer.Option("--producer", help="`producer` for lines that do not name one."),
    ] = "klimapuls-cli",
) -> None:
    """Validate every line of FILE and send the valid ones to KIND's topic.

    Each invalid line is reported with its line number, field and reason and
    sent to the dead-letter topic; valid lines are still sent. The exit code
    is 1 when any line was invalid or the file holds no events.
    """
    from klimapuls.cli.produce import run_produce
    from klimapuls.producer.readers import check_file_type

    kind = _usage(lambda: normalize_kind(kind, EVENT_KINDS, "kind"), "KIND")
    _usage(lambda: check_file_type(file), "FILE")
    raise typer.Exit(
        run_produce(
            command_settings(),
            kind,
            file,
            dry_run=dry_run,
            producer_name=producer_name,
            console=console,
            err_console=err_console,
        )
    )


def _usage(check: Any, hint: str) -> Any:
    """Run `check`; a Klimapuls error becomes a usage error (exit 2) on `hint`."""
    try:
        return check()
    except KlimapulsError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate DATABASE_URL's schema to the newest revision and load seed data.

    With GRAFANA_DB_PASSWORD set, Grafana's read-only role `klimapuls_grafana`
    may log in with it (only its SCRAM digest is sent to the server).
    """
    from klimapuls.storage import prepare_database

    settings = command_settings()
    url = check_database(settings.require_database_url())
    password = settings.grafana.datasource_password
    prepare_database(url, password.get_secret_value() if password else None)
    console.print("database schema is up to date; seed data loaded")
    if password:
        console.print("Grafana's database role klimapuls_grafana may log in")


@topics_app.command("create")
def topics_create(
    replication_factor: Annotated[
        int,
        typer.Option(min=1, help="Replicas per partition (3 on a production cluster)."),
    ] = 1,
) -> None:
    """Create every Klimapuls topic on KAFKA_BOOTSTRAP_SERVERS that is missing."""
    from klimapuls.producer import check_reachable
    from klimapuls.stack.topics import ensure_topics

    settings = command_settings()
    check_reachable(settings)
    created = ensure_topics(settings, replication_factor=replication_factor)
    console.print(
        f"{plural(len(created), 'topic')} created: {', '.join(created) or 'none'}"
    )


def _register_commands() -> None:
    # Each command family lives in its own module and adds itself here.
    from klimapuls.cli import (
        alerts,
        bench,
        changes,
        gateway,
        grafana,
        health,
        importers,
        progress,
        report,
        simulate,
        tokens,
    )

    for module in (
        progress,
        changes,
        importers,
        simulate,
        tokens,
        gateway,
        alerts,
        grafana,
        report,
        bench,
        health,
    ):
        module.register(app)


_register_commands()


# -- help that reads well ---------------------------------------------------


def _polish(command: Any) -> None:
    """Help without `<bool>` on flags, and `KIND FILE` rather than `{kind} {file}`.

    Duck-typed: typer builds its commands on its own copy of click.
    """
    for param in command.params:
        kind = getattr(param, "param_type_name", "")
        if kind == "option" and getattr(param, "is_flag", False):
            param.metavar = param.metavar or ""
        if kind == "argument" and param.metavar is None:
            param.metavar = (param.name or "").upper()
    help_option = command.get_help_option(command.context_class(command))
    if help_option is not None:
        help_option.metavar = ""
    original = command.collect_usage_pieces

    def usage_pieces(ctx: Any) -> list[str]:
        return [re.sub(r"\{([^}]*)\}", r"\1", piece) for piece in original(ctx)]

    command.collect_usage_pieces = usage_pieces
    for sub in getattr(command, "commands", {}).values():
        _polish(sub)


def cli_command() -> Any:
    """The click command behind `klimapuls`, with the help polished."""
    command = typer.main.get_command(app)
    _polish(command)
    return command


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # Connection trouble is reported once, by us, not as 30 s of client warnings.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    command = cli_command()
    args = argv if argv is not None else sys.argv[1:]
    try:
        # Not standalone: usage errors come back to us and are printed as one
        # plain line (typer would draw a box hard-wrapped at 80 columns).
        with stops_not_dropped():  # a Ctrl-C is never lost to a finalizer
            code = command.main(
                args=args,
                prog_name="klimapuls",
                standalone_mode=False,
            )
    except click_exceptions.NoArgsIsHelpError as exc:
        sys.exit(exc.exit_code)  # the help is printed already
    except click_exceptions.ClickException as exc:
        _print_usage_error(exc)
        sys.exit(_usage_exit_code(exc, args))
    except typer.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(1)
    except KlimapulsError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2 if isinstance(exc, OptionError) else 1)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        err_console.print(
            f"[red]error:[/] {escape(where + (exc.strerror or str(exc)))}"
        )
        sys.exit(1)
    # A command's own return value is not an exit code; `typer.Exit` is.
    sys.exit(code if isinstance(code, int) else 0)


#: Commands run as health probes: every failure of theirs exits 1, a usage
#: error too (Docker reserves a health check's exit code 2).
_PROBES = frozenset({"healthcheck"})


def _usage_exit_code(exc: click_exceptions.ClickException, args: list[str]) -> int:
    ctx = getattr(exc, "ctx", None)
    # The parser raises some errors (a missing option value) without a context.
    words = [a for a in args if not a.startswith("-")]
    command = ctx.command.name if ctx is not None else (words[0] if words else None)
    return 1 if command in _PROBES and exc.exit_code == 2 else exc.exit_code


def _print_usage_error(exc: click_exceptions.ClickException) -> None:
    """A usage error as one line naming the problem, then the `--help` hint.

    `error: FILE: /path/events.txt: unknown file type '.txt'; ...` rather
    than click's `Invalid value for 'FILE':` in a box: never wrapped, on a
    terminal or not, so a long path is never cut.
    """
    message = exc.format_message()
    if isinstance(exc, click_exceptions.BadParameter) and not isinstance(
        exc, click_exceptions.MissingParameter
    ):
        hint = exc.param_hint
        if hint is None and exc.param is not None:
            hint = exc.param.get_error_hint()
        if hint is not None:
            names = [hint] if isinstance(hint, str) else list(hint)
            where = " / ".join(name.strip("'\"") for name in names)
            message = f"{where}: {exc.message}"
        else:
            message = exc.message
    err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    ctx = exc.ctx if isinstance(exc, click_exceptions.UsageError) else None
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        err_console.print(
            f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.",
            markup=False,
            soft_wrap=True,
            style="dim",
        )
