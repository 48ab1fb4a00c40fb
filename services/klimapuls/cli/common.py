"""What every `klimapuls` command shares: consoles, settings, servers, wording.

- Consoles never turn user data into markup or emoji (`events.jsonl:100:`
  stays as written) and do not hard-wrap text when output is not a
  terminal, so log files and pipes get whole lines.
- `command_settings` builds the settings of an entry point and, when
  `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` are unset, finds the embedded
  stack that `klimapuls up` runs for the current data folder.
- `check_database` turns a malformed or unreachable `DATABASE_URL` into one
  line naming it, before any driver error can surface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from klimapuls.core.errors import ConfigurationError, KlimapulsError
from klimapuls.settings import Settings
from klimapuls.stack.state import running_stack

__all__ = [
    "KlimapulsConsole",
    "check_database",
    "command_settings",
    "escape",
    "normalize_kind",
    "plural",
]

_CONNECT_TIMEOUT_S = 5


class KlimapulsConsole(Console):
    """A rich console that prints user data as it is.

    No emoji codes (`:100:`), no highlighting; markup only where our own
    text asks for it (user values are passed through `escape`); and soft
    wrapping whenever the output is not a terminal.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: D102
        if kwargs.get("soft_wrap") is None:
            kwargs["soft_wrap"] = not self.is_terminal
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
    `DATA_DIR/stack.json`) are used, and a note says so on stderr.
    """
    settings = Settings()
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


def check_database(url: str) -> str:
    """`url` once it parses and a server answers on it; else one clear error."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"DATABASE_URL {url[:80]!r} is not a database URL; give one such as "
            "postgresql+psycopg://user:pass@host:5432/klimapuls"
        ) from None
    if not parsed.drivername.startswith(("postgresql", "postgres")):
        raise ConfigurationError(
            f"DATABASE_URL uses {parsed.drivername!r}; Klimapuls needs PostgreSQL "
            "(postgresql+psycopg://user:pass@host:5432/klimapuls)"
        )
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, connect_timeout=_CONNECT_TIMEOUT_S):
            pass
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        raise KlimapulsError(
            f"cannot reach the database at {masked(url)} (DATABASE_URL): {reason}"
        ) from None
    return url
