"""`klimapuls gateway`: run the HTTP gateway (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from klimapuls.settings import Settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `klimapuls gateway` to the `klimapuls` app."""

    @app.command(name="gateway")
    def gateway_command(
        host: Annotated[
            str | None,
            typer.Option(help="Address to bind [default: KLIMAPULS_GATEWAY_HOST]."),
        ] = None,
        port: Annotated[
            int | None,
            typer.Option(help="Port [default: KLIMAPULS_GATEWAY_PORT, else 8080]."),
        ] = None,
    ) -> None:
        """Serve POST /v1/events, GET /v1/health and /openapi.json.

        Producers authenticate with tokens from `klimapuls tokens create`.
        Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL. Binds 127.0.0.1 unless
        told otherwise.
        """
        from klimapuls.gateway import serve

        settings = Settings()
        updates: dict[str, object] = {}
        if host is not None:
            updates["gateway_host"] = host
        if port is not None:
            updates["gateway_port"] = port
        serve(settings.model_copy(update=updates))
