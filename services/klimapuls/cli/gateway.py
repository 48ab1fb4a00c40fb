"""`klimapuls gateway`: run the HTTP gateway (FastAPI on uvicorn).

Its options and settings are checked before anything starts: a bad port, a
host this machine cannot bind, a missing or malformed setting each end in
one line naming it, exit code 2 (a port already in use: exit code 1).
"""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer

from klimapuls.cli.common import OptionError, parse_database_url
from klimapuls.core.errors import ConfigurationError, KlimapulsError
from klimapuls.settings import Settings, load_settings

__all__ = ["gateway_settings", "register"]


def _port(text: str, source: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise OptionError(f"{source} {text!r} is not a port: give 1 to 65535")
    return int(text)


def _check_bindable(host: str, port: int, source: str) -> None:
    """Raise unless this machine can listen on `host:port` (then let it go)."""
    if not host.strip() or any(c.isspace() for c in host):
        raise OptionError(
            f"{source} {host!r} is not an address: give one such as 127.0.0.1 "
            "(0.0.0.0 for every interface)"
        )
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OptionError(
            f"{source} {host!r} is not an address of this machine: {reason}"
        ) from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise KlimapulsError(
                    f"port {port} on {host} is in use; give another with --port"
                ) from None
            raise OptionError(
                f"cannot listen on {host}:{port} ({source}): {exc.strerror or exc}"
            ) from None


def gateway_settings(host: str | None, port: str | None) -> Settings:
    """The gateway's settings with the options applied, each checked."""
    from klimapuls.gateway.app import check_rate
    from klimapuls.gateway.server import DEFAULT_PORT
    from klimapuls.producer.connect import parse_servers

    try:
        settings = load_settings()
    except ConfigurationError as exc:
        raise OptionError(str(exc)) from None
    updates: dict[str, object] = {}
    if port is not None:
        updates["gateway_port"] = _port(port, "--port")
    if host is not None:
        updates["gateway_host"] = host
    settings = settings.model_copy(update=updates)
    if settings.database_url is None:
        raise OptionError(
            "DATABASE_URL is not set: the gateway reads its tokens there "
            "(postgresql+psycopg://user:pass@host:5432/klimapuls)"
        )
    try:
        parse_database_url(settings.require_database_url())
        if not settings.kafka.bootstrap_servers:
            raise ConfigurationError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: the gateway sends the events "
                "there (host:port)"
            )
        parse_servers(settings.kafka.bootstrap_servers)
        check_rate(settings)
    except ConfigurationError as exc:
        raise OptionError(str(exc)) from None
    _check_bindable(
        settings.gateway_host,
        settings.gateway_port if settings.gateway_port is not None else DEFAULT_PORT,
        "--host" if host is not None else "KLIMAPULS_GATEWAY_HOST",
    )
    return settings


def register(app: typer.Typer) -> None:
    """Add `klimapuls gateway` to the `klimapuls` app."""

    @app.command(name="gateway")
    def gateway_command(
        host: Annotated[
            str | None,
            typer.Option(help="Address to bind [default: KLIMAPULS_GATEWAY_HOST]."),
        ] = None,
        port: Annotated[
            str | None,
            typer.Option(
                metavar="PORT",
                help="Port, 1 to 65535 [default: KLIMAPULS_GATEWAY_PORT, else 8080].",
            ),
        ] = None,
    ) -> None:
        """Serve POST /v1/events, GET /v1/health and /openapi.json.

        Producers authenticate with tokens from `klimapuls tokens create`.
        Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL. Binds 127.0.0.1 unless
        told otherwise.
        """
        from klimapuls.gateway import serve

        serve(gateway_settings(host, port))
