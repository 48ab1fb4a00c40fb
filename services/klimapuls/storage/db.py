"""Engines, transactions and migrations.

Driver errors leave `in_transaction` as `RetryableError` (connection
trouble) with the cause chained, so callers never see psycopg or
SQLAlchemy exceptions for a database that is away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from klimapuls.core.errors import ConfigurationError, RetryableError

if TYPE_CHECKING:  # Alembic is imported where it is used: services never migrate
    from alembic.config import Config

__all__ = [
    "alembic_config",
    "as_json",
    "copy_rows",
    "create_db_engine",
    "has_timescaledb",
    "in_transaction",
    "is_migrated",
    "migrate",
]

T = TypeVar("T")


def in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction; connection failures become `RetryableError`."""
    try:
        with engine.begin() as conn:
            return work(conn)
    except OperationalError as exc:
        raise RetryableError(f"database unavailable: {exc.orig}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise RetryableError(f"database connection lost: {exc.orig}") from exc
        raise


def as_json(values: Any) -> str:
    """A batch of values as one JSON text parameter.

    Batches go to the server as one JSON document read with
    `json_to_recordset` or `json_array_elements_text`: psycopg dumps a
    Python list as an array element by element (about 8 µs each, 40 ms for
    a batch's ids), orjson writes the whole batch in about 1 ms and the
    server parses it in C. Datetimes become RFC 3339 text with their offset.
    """
    return orjson.dumps(values).decode()


def copy_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """COPY `rows` into `table` in `conn`'s transaction: one round trip.

    `table` and `columns` are our own names, never event text.
    """
    _copy(conn, f"COPY {table} ({', '.join(columns)}) FROM STDIN", None, rows)


def copy_binary(
    conn: Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Binary COPY of `rows` into `table`; `columns` are (name, type) pairs.

    Binary needs no text formatting of dates and numbers on either side:
    the bulk path's rows go this way. `table` and `columns` are our own
    names, never event text.
    """
    names = ", ".join(name for name, _ in columns)
    statement = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
    _copy(conn, statement, [kind for _, kind in columns], rows)


def _copy(
    conn: Connection,
    statement: str,
    types: Sequence[str] | None,
    rows: Iterable[Sequence[Any]],
) -> None:
    driver = conn.connection.driver_connection
    if driver is None:  # a detached connection: a bug, not bad input
        raise RuntimeError("COPY needs a live connection")
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        if types is not None:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def create_db_engine(url: str) -> Engine:
    """An engine for `url` (`postgresql+psycopg://...`; `postgresql://` is upgraded).

    A URL that is not one, or names another database than PostgreSQL, is a
    `ConfigurationError` naming DATABASE_URL, for every caller alike.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"DATABASE_URL {url[:80]!r} is not a database URL; give one such as "
            "postgresql+psycopg://user:pass@host:5432/klimapuls"
        ) from None
    if not parsed.drivername.startswith("postgresql"):
        raise ConfigurationError(
            f"DATABASE_URL uses {parsed.drivername!r}; Klimapuls needs PostgreSQL "
            "(postgresql+psycopg://user:pass@host:5432/klimapuls)"
        )
    # Sessions in UTC: timestamps come back as UTC datetimes, so hour
    # arithmetic and keys never meet a local DST fold, whatever the
    # server's TimeZone setting.
    return create_engine(
        url,
        pool_pre_ping=True,
        future=True,
        connect_args={"options": "-c timezone=UTC"},
    )


def alembic_config() -> Config:
    """Alembic configuration pointing at the migrations shipped in the package."""
    from alembic.config import Config

    cfg = Config()
    location = resources.files("klimapuls.storage").joinpath("migrations")
    cfg.set_main_option("script_location", str(Path(str(location))))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent; concurrent callers serialise)."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        # Several services may start at once; one migrates, the others wait.
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.migrate'))")
        )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def is_migrated(engine: Engine) -> bool:
    """Whether the schema is at the head revision of the shipped migrations."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == heads


def has_timescaledb(engine: Engine) -> bool:
    """Whether the TimescaleDB extension is installed in this database."""
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        ).first()
    return found is not None
