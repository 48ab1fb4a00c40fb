"""Producer grants and API tokens (tables `producer_grant`, `producer_token`).

One writer: this module, called by `klimapuls tokens` (an operator's
command) and by `klimapuls db upgrade` (the built-in producers' grants).
The services and the gateway only read, through `GrantCache`, which reloads
at most every few seconds, so a new grant or a revoked token takes effect
within that interval without a restart.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert

from klimapuls.core.authorisation import ANY, BUILTIN_PRODUCERS, Grant, Grants
from klimapuls.core.errors import RetryableError
from klimapuls.core.tokens import format_token, secret_digest
from klimapuls.storage.db import in_transaction
from klimapuls.storage.models_grants import ProducerGrantRow, ProducerTokenRow

__all__ = [
    "GRANTS_REFRESH_S",
    "Credentials",
    "GrantCache",
    "TokenInfo",
    "create_token",
    "grant",
    "grant_cache",
    "list_tokens",
    "load_credentials",
    "load_grants",
    "revoke_token",
    "seed_builtin_grants",
    "withdraw_grants",
]

#: How often the services reload the grants (a new grant or a withdrawal
#: takes effect within this many seconds).
GRANTS_REFRESH_S = 5.0

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its secret, only the digest's owner and dates."""

    token_id: str
    producer: str
    created_at: datetime
    revoked_at: datetime | None
    note: str | None
    secret_sha256: str


@dataclass(frozen=True)
class Credentials:
    """What the gateway checks a request against: live tokens and grants."""

    tokens: Mapping[str, TokenInfo]
    grants: Grants


def grant(
    conn: Connection,
    producer: str,
    scopes: Iterable[str],
    kinds: Iterable[str] = (ANY,),
    *,
    granted_by: str,
) -> int:
    """Let `producer` write `scopes` in `kinds`; returns the grants that are new."""
    rows = [
        {"producer": producer, "kind": kind, "scope": scope, "granted_by": granted_by}
        for kind in dict.fromkeys(kinds)
        for scope in dict.fromkeys(scopes)
    ]
    if not rows:
        return 0
    stmt = insert(ProducerGrantRow).on_conflict_do_nothing()
    inserted = conn.execute(stmt.returning(ProducerGrantRow.scope), rows)
    return len(inserted.all())


def withdraw_grants(conn: Connection, producer: str) -> int:
    """Withdraw every grant of `producer`; returns how many there were."""
    result = conn.execute(
        delete(ProducerGrantRow).where(ProducerGrantRow.producer == producer)
    )
    return int(result.rowcount)


def load_grants(conn: Connection) -> Grants:
    """Every grant."""
    rows = conn.execute(
        select(ProducerGrantRow.producer, ProducerGrantRow.scope, ProducerGrantRow.kind)
    )
    return Grants(Grant(producer, scope, kind) for producer, scope, kind in rows)


def create_token(
    conn: Connection, producer: str, now: datetime, note: str | None = None
) -> tuple[str, str]:
    """Store a new token of `producer` (hashed); returns its id and its text.

    The text is the only time the secret exists outside the client: it is
    not stored, only its SHA-256.
    """
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    conn.execute(
        insert(ProducerTokenRow).values(
            token_id=token_id,
            producer=producer,
            secret_sha256=secret_digest(secret),
            note=note,
            created_at=now,
        )
    )
    return token_id, format_token(token_id, secret)


def revoke_token(conn: Connection, token_id: str, now: datetime) -> str | None:
    """Revoke a token; returns its producer, or None when no live token has the id."""
    table = ProducerTokenRow
    found = conn.execute(
        update(table)
        .where(table.token_id == token_id, table.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(table.producer)
    ).first()
    return None if found is None else str(found[0])


def list_tokens(conn: Connection) -> list[TokenInfo]:
    """Every token, live and revoked, oldest first."""
    rows = conn.execute(
        select(
            ProducerTokenRow.token_id,
            ProducerTokenRow.producer,
            ProducerTokenRow.created_at,
            ProducerTokenRow.revoked_at,
            ProducerTokenRow.note,
            ProducerTokenRow.secret_sha256,
        ).order_by(ProducerTokenRow.created_at, ProducerTokenRow.token_id)
    )
    return [TokenInfo(*row) for row in rows]


def load_credentials(conn: Connection) -> Credentials:
    """The live (not revoked) tokens by id, and every grant."""
    live = {t.token_id: t for t in list_tokens(conn) if t.revoked_at is None}
    return Credentials(live, load_grants(conn))


def seed_builtin_grants(engine: Engine) -> int:
    """Grant the platform's own producers every scope (`db upgrade`; idempotent)."""

    def work(conn: Connection) -> int:
        return sum(
            grant(conn, producer, (ANY,), granted_by="db upgrade")
            for producer in BUILTIN_PRODUCERS
        )

    return in_transaction(engine, work)


class GrantCache(Generic[T]):
    """A value loaded from the database, reloaded when older than `ttl_s`.

    Thread-safe. When a reload fails because the database is away, the last
    value loaded is kept (and the failure logged), so the gateway keeps
    answering; with no value yet, the `RetryableError` is raised.
    """

    def __init__(
        self,
        engine: Engine,
        load: Callable[[Connection], T],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._load = load
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded_at = 0.0

    def get(self) -> T:
        """The value, reloaded first if it is older than the interval."""
        with self._lock:
            now = self._clock()
            if self._value is not None and now - self._loaded_at < self._ttl_s:
                return self._value
            try:
                self._value = in_transaction(self._engine, self._load)
            except RetryableError as exc:
                if self._value is None:
                    raise
                log.warning("grants not reloaded, keeping the last ones: %s", exc)
                return self._value
            self._loaded_at = now
            return self._value

    def clear(self) -> None:
        """Forget the value: the next `get` reloads."""
        with self._lock:
            self._value = None


def grant_cache(engine: Engine, ttl_s: float = GRANTS_REFRESH_S) -> GrantCache[Grants]:
    """The grants as a service's handler reads them: cached, reloaded every `ttl_s`."""
    return GrantCache(engine, load_grants, ttl_s)
