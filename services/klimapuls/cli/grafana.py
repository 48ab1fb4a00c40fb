"""`klimapuls grafana`: generate, validate and provision the boards and rules.

- `generate [--check]` writes `grafana/dashboards/*.json` and
  `grafana/provisioning/alerting/klimapuls.yaml` from `klimapuls.boards`;
- `validate [PATH]` checks every board and rule against Grafana's own schema
  (npm `@grafana/schema` and the foundation SDK's alerting types, with `tsc`)
  and the static rules, and with `--database` runs every query; with PATH (a
  folder or one file) the boards and alert rule files found there;
- `provision --url URL --token TOKEN` creates or updates the datasource,
  folder, boards and alert rules on a running Grafana, idempotently;
- `push` is `provision` of the boards alone, on `GRAFANA_URL` (kept for
  scripts written before `provision`).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from klimapuls.cli.common import command_settings, plural
from klimapuls.core.errors import ConfigurationError, KlimapulsError
from klimapuls.settings import Settings

__all__ = ["register"]

EXIT_OK = 0
EXIT_PROBLEMS = 1


def _grafana_dir() -> Path:
    return Path(str(resources.files("klimapuls.grafana")))


def _print_lines(console: Console, lines: list[str]) -> None:
    for line in lines:
        console.print(line, markup=False, emoji=False, highlight=False, soft_wrap=True)


def run_generate(grafana_dir: Path, check: bool, console: Console) -> int:
    """Write (or with `check`, compare) the generated files; return the exit code."""
    from klimapuls.boards import write_generated
    from klimapuls.boards.validate import static_problems

    if check:
        from klimapuls.boards import all_boards

        stale = [
            p for p in static_problems(all_boards(), grafana_dir) if "generates" in p
        ]
        _print_lines(console, stale or ["every generated file is current"])
        return EXIT_PROBLEMS if stale else EXIT_OK
    changed = write_generated(grafana_dir)
    note = ", ".join(changed) if changed else "nothing changed"
    _print_lines(console, [f"generated under {grafana_dir}: {note}"])
    return EXIT_OK


def run_validate(
    grafana_dir: Path,
    schema_cache: Path | None,
    database_url: str | None,
    console: Console,
    path: Path | None = None,
) -> int:
    """Static rules, Grafana's schema and optionally the queries; the exit code.

    Without `path`, the boards and rules the code generates (and whether the
    files under `grafana_dir` are current); with it, the boards and alert
    rule files in that folder or file.
    """
    from klimapuls.boards import all_boards
    from klimapuls.boards.validate import (
        GrafanaFiles,
        ensure_schema_tools,
        load_files,
        schema_problems,
        static_problems,
    )

    files: GrafanaFiles | None = None
    rules = None
    if path is None:
        boards = all_boards()
        problems = static_problems(boards, grafana_dir)
    else:
        files = load_files(path)
        boards, rules = files.boards, files.rules
        problems = [*files.problems, *static_problems(boards, None, rules)]
    if schema_cache is not None:
        tools = ensure_schema_tools(schema_cache)
        problems += [f"schema: {p}" for p in schema_problems(boards, tools, files)]
    checked = 0
    if database_url is not None:
        from klimapuls.boards.validate import run_queries
        from klimapuls.storage.db import create_db_engine

        engine = create_db_engine(database_url)
        try:
            with engine.connect() as conn:
                checks = run_queries(conn, boards, datetime.now(UTC), rules)
        finally:
            engine.dispose()
        checked = len(checks)
        problems += [f"{c.where}: {c.problem}" for c in checks if c.problem]
        _print_lines(
            console, [f"skipped {c.where}: {c.skipped}" for c in checks if c.skipped]
        )
    _print_lines(console, problems)
    panels = sum(len(b.queries) for b in boards)
    counted = "" if rules is None else f", {plural(len(rules), 'alert rule')}"
    summary = (
        f"{plural(len(boards), 'board')}, "
        f"{plural(panels, 'panel query', 'panel queries')}{counted}"
        + (", Grafana's schema" if schema_cache is not None else "")
        + (
            f", {plural(checked, 'query', 'queries')} run"
            if database_url is not None
            else ""
        )
        + f": {plural(len(problems), 'problem')}"
    )
    _print_lines(console, [summary])
    return EXIT_PROBLEMS if problems else EXIT_OK


def run_provision(
    url: str,
    token: str | None,
    settings: Settings,
    console: Console,
    boards_only: bool = False,
) -> int:
    """Provision everything on `url`; print what changed; return the exit code."""
    from klimapuls.boards import all_boards
    from klimapuls.boards.provisioning import (
        grafana_api,
        provision,
    )

    _check_grafana_url(url)
    password = settings.grafana.datasource_password
    try:
        changes = provision(
            grafana_api(url, token, settings.grafana),
            all_boards(),
            datasource_password=password.get_secret_value() if password else None,
            with_datasource=not boards_only,
            with_rules=not boards_only,
            rules=settings.alert_rules(),
            variables=settings.grafana.datasource_variables(),
        )
    except KlimapulsError:
        raise
    except Exception as exc:  # grafana-client and requests raise many kinds
        logging.getLogger(__name__).debug("grafana provision failed: %r", exc)
        raise KlimapulsError(
            f"Grafana at {url} did not answer or refused the request; check "
            "the address (--url, GRAFANA_URL) and the token (GRAFANA_TOKEN)"
        ) from None
    _print_lines(console, [f"{c.kind} {c.uid}: {c.action}" for c in changes])
    written = sum(c.action != "unchanged" for c in changes)
    _print_lines(console, [f"{written} of {len(changes)} objects written on {url}"])
    return EXIT_OK


def _check_grafana_url(url: str | None) -> None:
    if not url:
        raise ConfigurationError(
            "GRAFANA_URL is not set: give the address of a Grafana, "
            "e.g. http://localhost:3000 (or --url)"
        )
    if not re.match(r"^https?://[^\s/:]+(:\d+)?(/\S*)?$", url):
        raise ConfigurationError(
            f"GRAFANA_URL {url[:80]!r} is not an http(s) address "
            "(e.g. http://localhost:3000)"
        )


def register(app: typer.Typer) -> None:
    """Add `klimapuls grafana ...` to the `klimapuls` app."""
    grafana_app = typer.Typer(
        help="Grafana boards, alert rules and provisioning.", no_args_is_help=True
    )
    app.add_typer(grafana_app, name="grafana")

    @grafana_app.command("generate")
    def generate(
        check: Annotated[
            bool,
            typer.Option("--check", help="Only report files that are not current."),
        ] = False,
        grafana_dir: Annotated[
            Path | None,
            typer.Option("--dir", help="The grafana/ folder [default: the package's]."),
        ] = None,
    ) -> None:
        """Write the boards' JSON and the alert rules' YAML from the code."""
        from klimapuls.cli import console

        raise typer.Exit(run_generate(grafana_dir or _grafana_dir(), check, console))

    @grafana_app.command("validate")
    def validate(
        path: Annotated[
            Path | None,
            typer.Argument(
                help="A folder or one file (board .json, alert rules .yaml) to "
                "check [default: the boards and rules the code generates].",
                show_default=False,
            ),
        ] = None,
        schema: Annotated[
            bool,
            typer.Option(
                "--schema/--no-schema",
                help="Check against Grafana's schema (npm, tsc).",
            ),
        ] = True,
        schema_cache: Annotated[
            Path | None,
            typer.Option(
                help="Folder for the npm packages [default: DATA_DIR/grafana-schema]."
            ),
        ] = None,
        database: Annotated[
            bool,
            typer.Option(
                "--database", help="Also run every query against DATABASE_URL."
            ),
        ] = False,
    ) -> None:
        """Check every board and alert rule without a Grafana server.

        Static rules (unique panel ids, declared variables, the provisioned
        datasource uid, units and axis labels, 'syntetisk', board views only,
        generated files current) and Grafana's own schema; with --database,
        every panel and alert query runs with Grafana's macros expanded.
        With PATH, the boards and alert rule files in that folder or file.
        """
        from klimapuls.cli import console

        settings = command_settings()
        cache = schema_cache or settings.data_dir / "grafana-schema"
        url = settings.require_database_url() if database else None
        raise typer.Exit(
            run_validate(_grafana_dir(), cache if schema else None, url, console, path)
        )

    @grafana_app.command("provision")
    def provision_command(
        url: Annotated[
            str | None,
            typer.Option(help="Grafana's URL [default: GRAFANA_URL].", metavar="URL"),
        ] = None,
        token: Annotated[
            str | None,
            typer.Option(
                help="A service account token [default: GRAFANA_TOKEN].",
                metavar="TOKEN",
            ),
        ] = None,
    ) -> None:
        """Create or update datasource, folder, boards and alert rules by uid.

        Reads first and writes only what differs, so a second run changes
        nothing. The datasource password comes from GRAFANA_DB_PASSWORD.
        """
        from klimapuls.cli import console

        settings = command_settings()
        secret = settings.grafana.token
        raise typer.Exit(
            run_provision(
                url or settings.grafana.url or "",
                token or (secret.get_secret_value() if secret else None),
                settings,
                console,
            )
        )

    @grafana_app.command("push")
    def push() -> None:
        """Create or update the boards on GRAFANA_URL (provision, boards only)."""
        from klimapuls.cli import console

        settings = command_settings()
        secret = settings.grafana.token
        raise typer.Exit(
            run_provision(
                settings.grafana.url or "",
                secret.get_secret_value() if secret else None,
                settings,
                console,
                boards_only=True,
            )
        )
