"""Run the gateway app on uvicorn, bound where the settings say."""

from __future__ import annotations

import signal

import uvicorn

from klimapuls.gateway.app import create_app, start_draining
from klimapuls.settings import Settings

__all__ = ["DEFAULT_PORT", "serve"]

#: The port of `klimapuls gateway` when `KLIMAPULS_GATEWAY_PORT` is unset.
DEFAULT_PORT = 8080

_UVICORN_LEVELS = {
    "crit": "critical",
    "error": "error",
    "warn": "warning",
    "info": "info",
    "debug": "debug",
}


def serve(settings: Settings) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn finishes open requests first).

    SIGUSR1 (sent by `klimapuls up` when it stops) makes every answer a 503
    with Retry-After while the topics drain (`start_draining`). `up` starts
    the gateway with SIGUSR1 blocked, so one sent while it starts waits for
    the handler (then the gateway starts draining) instead of killing it.
    """
    port = settings.gateway_port if settings.gateway_port is not None else DEFAULT_PORT
    app = create_app(settings)
    signal.signal(signal.SIGUSR1, lambda _signum, _frame: start_draining(app))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=port,
        log_level=_UVICORN_LEVELS[settings.log_level],
        access_log=settings.log_level == "debug",
        # Producers on a shared network see no server banner to fingerprint.
        server_header=False,
        timeout_graceful_shutdown=10,
    )
