"""The `klimapuls` command: run the platform, produce events, inspect progress."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from klimapuls.core.errors import KlimapulsError
from klimapuls.core.validation import EVENT_KINDS
from klimapuls.settings import Settings

__all__ = ["app", "main"]

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
grafana_app = typer.Typer(help="Grafana dashboards.", no_args_is_help=True)
app.add_typer(grafana_app, name="grafana")

console = Console()
err_console = Console(stderr=True)


def _settings(data_dir: Path | None = None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


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
        Path | None,
        typer.Option(help="Folder of the embedded stack [default: ./.klimapuls]."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the demo data.")] = 2045,
    demo_days: Annotated[
        int, typer.Option(help="Days of hourly mobility counts in the demo data.")
    ] = 1,
    timeout: Annotated[
        float, typer.Option(help="With --once: give up after this many seconds.")
    ] = 600.0,
) -> None:
    """Start the platform: broker, database, topics, schema and services.

    Without KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL it starts an embedded Tansu
    broker and PostgreSQL under the data folder; with them, it uses those.
    Runs until Ctrl-C, or with --once until the demo data are processed.
    """
    from klimapuls.cli.up import run_up

    raise typer.Exit(
        run_up(
            _settings(data_dir),
            demo=demo,
            once=once,
            seed=seed,
            demo_days=demo_days,
            timeout_s=timeout,
            console=console,
        )
    )


@app.command()
def produce(
    kind: Annotated[
        str,
        typer.Argument(help=f"Event family: {', '.join(EVENT_KINDS)}."),
    ],
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A .csv or .jsonl file."),
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
    is 1 when any line was invalid.
    """
    from klimapuls.cli.produce import run_produce

    if kind not in EVENT_KINDS:
        err_console.print(
            f"[red]unknown kind {kind!r}[/]; one of {', '.join(EVENT_KINDS)}"
        )
        raise typer.Exit(2)
    raise typer.Exit(
        run_produce(
            _settings(),
            kind,
            file,
            dry_run=dry_run,
            producer_name=producer_name,
            console=console,
            err_console=err_console,
        )
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate DATABASE_URL's schema to the newest revision and load seed data."""
    from klimapuls.storage import prepare_database

    prepare_database(_settings().require_database_url())
    console.print("database schema is up to date; seed data loaded")


@topics_app.command("create")
def topics_create(
    replication_factor: Annotated[
        int, typer.Option(help="Replicas per partition (3 on a production cluster).")
    ] = 1,
) -> None:
    """Create every Klimapuls topic on KAFKA_BOOTSTRAP_SERVERS that is missing."""
    from klimapuls.stack.topics import ensure_topics

    created = ensure_topics(_settings(), replication_factor=replication_factor)
    console.print(f"{len(created)} topics created: {', '.join(created) or 'none'}")


@grafana_app.command("push")
def grafana_push() -> None:
    """Create or update every dashboard on GRAFANA_URL (GRAFANA_TOKEN or user)."""
    from klimapuls.dashboards import grafana_api, push_dashboards

    uids = push_dashboards(grafana_api(_settings().grafana))
    console.print(f"pushed {len(uids)} dashboards: {', '.join(uids)}")


def _register_commands() -> None:
    # Each command family lives in its own module and adds itself here.
    from klimapuls.cli import changes, importers, progress, simulate

    for module in (progress, changes, importers, simulate):
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        app(args=argv if argv is not None else sys.argv[1:], prog_name="klimapuls")
    except KlimapulsError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        sys.exit(1)
