"""`klimapuls healthcheck` and `klimapuls db wait`: checks for orchestrators.

- `healthcheck` exits 0 when this container can work: the database answers
  `SELECT 1` and a broker of KAFKA_BOOTSTRAP_SERVERS accepts a connection;
  with `--http URL`, when URL answers 2xx (the gateway's `/v1/health`).
- `db wait` waits, up to `--timeout` seconds, until the database answers;
  an init step before `klimapuls db upgrade`.

Failure is one line on stderr and exit 1: `healthcheck` says `unhealthy:`
and why, for every failure, a malformed setting too (Docker reserves a
health check's exit 2); `db wait` says `error:` as every command does.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
import urllib.error
import urllib.request
from typing import Annotated

import typer

from klimapuls.cli.common import check_database, command_settings
from klimapuls.core.errors import ConfigurationError, KlimapulsError
from klimapuls.producer.connect import parse_servers

__all__ = ["check_health", "check_http", "register", "wait_for_database"]

_TIMEOUT_S = 5.0


def check_http(url: str, timeout_s: float = _TIMEOUT_S) -> str:
    """What `url` answered when it is 2xx; else a `KlimapulsError`."""
    if not re.match(r"^https?://[^\s/]+(/\S*)?$", url):
        raise ConfigurationError(
            f"--http {url[:80]!r} is not an http(s) address "
            "(e.g. http://localhost:8080/v1/health)"
        )
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 - http(s) checked above
            return f"{url} answered {answer.status}"
    except urllib.error.HTTPError as exc:
        raise KlimapulsError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KlimapulsError(f"{url} did not answer: {reason}") from None
    except (ValueError, http.client.HTTPException) as exc:
        # A port, a host name or a character http refuses (InvalidURL).
        raise ConfigurationError(
            f"--http {url[:80]!r} is not an address http can use: {exc}"
        ) from None


def _check_broker(servers: str) -> None:
    # Any bootstrap server accepting a connection is enough for a
    # container's health (TLS listeners too): one broker of the cluster
    # restarting must not fail every service's probe. The list is read as
    # every command reads it.
    failures = []
    for host, port in parse_servers(servers):
        try:
            socket.create_connection((host, port), timeout=_TIMEOUT_S).close()
            return
        except OSError as exc:
            failures.append(f"{host}:{port}: {exc.strerror or exc}")
        except ValueError:  # IDNA cannot encode it (`a..b`)
            failures.append(f"{host}:{port}: not a valid host name")
    raise KlimapulsError(
        "no broker answers (KAFKA_BOOTSTRAP_SERVERS): " + "; ".join(failures)
    )


def check_health(http: str | None) -> str:
    """What answered, when this container can work; else a `KlimapulsError`.

    With `http`, only that URL answering 2xx; else the database and a broker
    of the settings (read here: a malformed one is a failure like another).
    """
    if http is not None:
        return check_http(http)
    settings = command_settings()
    check_database(settings.require_database_url())
    _check_broker(settings.require_bootstrap_servers())
    return "database and broker answer"


def wait_for_database(url: str, timeout_s: float, pause_s: float = 1.0) -> float:
    """Seconds until the database at `url` answered; `KlimapulsError` on timeout."""
    started = time.monotonic()
    while True:
        try:
            check_database(url)
        except ConfigurationError:
            raise
        except KlimapulsError as exc:
            waited = time.monotonic() - started
            if waited + pause_s > timeout_s:
                raise KlimapulsError(
                    f"gave up after {timeout_s:g} s: {exc}".replace(
                        "cannot reach", "could not reach"
                    )
                ) from None
            time.sleep(pause_s)
            continue
        return time.monotonic() - started


def register(app: typer.Typer) -> None:
    """Add `klimapuls healthcheck` to the app (and `db wait` to its `db` group)."""
    from klimapuls.cli import console, db_app, err_console

    @app.command("healthcheck")
    def healthcheck(
        http: Annotated[
            str | None,
            typer.Option(
                "--http",
                help="Check only that this URL answers 2xx "
                "(e.g. http://localhost:8080/v1/health).",
                metavar="URL",
            ),
        ] = None,
    ) -> None:
        """Exit 0 when the database and a broker answer (or --http URL does)."""
        try:
            answered = check_health(http)
        except (KlimapulsError, ValueError, OSError) as exc:
            # A probe's verdict, not a command's error: one line, exit 1.
            err_console.print(f"unhealthy: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        console.print(f"healthy: {answered}", markup=False, soft_wrap=True)

    @db_app.command("wait")
    def db_wait(
        timeout: Annotated[
            float,
            typer.Option(min=0, help="Give up after this many seconds."),
        ] = 60.0,
    ) -> None:
        """Wait until DATABASE_URL answers (an init step before `db upgrade`)."""
        settings = command_settings()
        waited = wait_for_database(settings.require_database_url(), timeout)
        console.print(f"database answers (after {waited:.1f} s)")
