"""`klimapuls tokens`: API tokens and grants of the producers (in DATABASE_URL).

A token authenticates a producer at the gateway; the producer's grants say
which scopes (and families) it may write, at the gateway and in every
service. The token's text is shown once, at creation; only its SHA-256 is
stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection

from klimapuls.cli.common import command_settings
from klimapuls.core.authorisation import ANY, BUILTIN_PRODUCERS, SECRETARIAT_SCOPE
from klimapuls.core.errors import ConfigurationError
from klimapuls.core.reference import scope_codes
from klimapuls.core.validation import EVENT_KINDS
from klimapuls.settings import Settings
from klimapuls.storage import grants
from klimapuls.storage.db import create_db_engine, in_transaction

__all__ = ["check_grant", "register"]

T = TypeVar("T")
_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,99}$")
_PRODUCER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:()@+-]{0,99}$")

tokens_app = typer.Typer(
    help="API tokens and grants of producers (the gateway's logins).",
    no_args_is_help=True,
)


def check_grant(producer: str, scopes: list[str], kinds: list[str]) -> None:
    """Refuse (one line, `ConfigurationError`) a producer, scope or family typo."""
    if not _PRODUCER.match(producer):
        raise ConfigurationError(
            f"--producer {producer!r}: use letters, digits and . _ - (at most 100)"
        )
    known = set(scope_codes()) | {ANY, SECRETARIAT_SCOPE}
    for scope in scopes:
        if scope not in known and not _SLUG.match(scope):
            raise ConfigurationError(
                f"--scope {scope!r} is not a scope: a kommune code, 1084, DK, "
                f"movia, {SECRETARIAT_SCOPE}, an operator slug, or *"
            )
    for kind in kinds:
        if kind != ANY and kind not in EVENT_KINDS:
            raise ConfigurationError(
                f"--kind {kind!r}: one of {', '.join(EVENT_KINDS)}, or *"
            )


def _in_database(settings: Settings, work: Callable[[Connection], T]) -> T:
    engine = create_db_engine(settings.require_database_url())
    try:
        return in_transaction(engine, work)
    finally:
        engine.dispose()


Scopes = Annotated[
    list[str],
    typer.Option(
        "--scope",
        help="A scope it may write (repeat): kommune code, 1084, DK, movia, "
        "klimaalliancen, an operator, or *.",
    ),
]
Kinds = Annotated[
    list[str] | None,
    typer.Option("--kind", help="Only these families (repeat) [default: all]."),
]
Producer = Annotated[
    str, typer.Option("--producer", help="The producer code it stamps on events.")
]


@tokens_app.command("create")
def create(
    producer: Producer,
    scope: Scopes,
    kind: Kinds = None,
    note: Annotated[str | None, typer.Option(help="Who or what it is for.")] = None,
) -> None:
    """Create a token for PRODUCER and grant it the scopes; print the token once."""
    kinds = kind or [ANY]
    check_grant(producer, scope, kinds)
    if producer in BUILTIN_PRODUCERS:
        raise ConfigurationError(
            f"{producer!r} is a built-in producer (it may write every scope); "
            "give outside producers their own code"
        )
    now = datetime.now(UTC)

    def work(conn: Connection) -> tuple[str, str]:
        grants.grant(conn, producer, scope, kinds, granted_by="tokens create")
        return grants.create_token(conn, producer, now, note)

    token_id, text = _in_database(command_settings(), work)
    out = Console(markup=False, emoji=False, highlight=False)
    out.print(f"token {token_id} for producer {producer}:")
    out.print(text, soft_wrap=True)
    Console(stderr=True, markup=False, emoji=False).print(
        "Store it now: it is not shown again (only its SHA-256 is kept)."
    )


@tokens_app.command("grant")
def grant_command(producer: Producer, scope: Scopes, kind: Kinds = None) -> None:
    """Grant scopes to PRODUCER without a token (a trusted importer on Kafka)."""
    kinds = kind or [ANY]
    check_grant(producer, scope, kinds)
    added = _in_database(
        command_settings(),
        lambda conn: grants.grant(conn, producer, scope, kinds, granted_by="tokens"),
    )
    Console(markup=False, emoji=False).print(f"{added} new grants for {producer}")


@tokens_app.command("list")
def list_command() -> None:
    """List every token (never its secret) and every producer's grants."""

    def work(conn: Connection) -> tuple[list[grants.TokenInfo], list[str]]:
        every = grants.load_grants(conn)
        tokens = grants.list_tokens(conn)
        lines = sorted(
            f"{g.producer}\t{g.scope}\t{g.kind}"
            for p in every.producers()
            for g in every.scopes_of(p)
        )
        return tokens, lines

    tokens, lines = _in_database(command_settings(), work)
    out = Console(markup=False, emoji=False, highlight=False)
    table = Table("token", "producer", "created", "revoked", "note", title="Tokens")
    for t in tokens:
        table.add_row(
            t.token_id,
            t.producer,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
            t.note or "",
        )
    out.print(table)
    grants_table = Table("producer", "scope", "family", title="Grants")
    for line in lines:
        grants_table.add_row(*line.split("\t"))
    out.print(grants_table)


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `list`).")],
    withdraw_grants: Annotated[
        bool,
        typer.Option(
            "--withdraw-grants",
            help="Also withdraw the producer's grants: its events still in the "
            "topics are then refused as dead letters.",
        ),
    ] = False,
) -> None:
    """Revoke a token: the gateway refuses it within a few seconds."""
    now = datetime.now(UTC)

    def work(conn: Connection) -> tuple[str | None, int]:
        producer = grants.revoke_token(conn, token_id, now)
        withdrawn = 0
        if producer is not None and withdraw_grants:
            withdrawn = grants.withdraw_grants(conn, producer)
        return producer, withdrawn

    producer, withdrawn = _in_database(command_settings(), work)
    if producer is None:
        raise ConfigurationError(f"no live token {token_id!r} (see tokens list)")
    message = f"token {token_id} of {producer} revoked"
    if withdraw_grants:
        message += f"; {withdrawn} grants withdrawn"
    Console(markup=False, emoji=False).print(message)


def register(app: typer.Typer) -> None:
    """Add `klimapuls tokens ...` to the `klimapuls` app."""
    app.add_typer(tokens_app, name="tokens")
