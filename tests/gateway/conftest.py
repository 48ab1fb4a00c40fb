"""Fixtures of the gateway tests: the app on uvicorn in this process, tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from klimapuls.gateway import create_app
from klimapuls.settings import Settings
from klimapuls.stack.broker import free_port
from klimapuls.storage import grants
from klimapuls.storage.db import in_transaction


@dataclass
class RunningGateway:
    """A gateway serving on 127.0.0.1; `url` is its base URL."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def post(self, body: Any, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(
            f"{self.url}/v1/events", json=body, headers=headers, timeout=30, **kwargs
        )

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def gateway_settings(settings: Settings) -> Settings:
    """This test's settings with a free gateway port, a fast credentials reload."""
    return settings.model_copy(
        update={
            "gateway_port": free_port(),
            "gateway_rate_limit": "1000/second",
            "gateway_refresh_seconds": 0.2,
            "gateway_send_timeout_s": 3.0,
        }
    )


@pytest.fixture
def start_gateway() -> Iterator[Callable[[Settings], RunningGateway]]:
    """Start the gateway app in this process, on uvicorn, in a thread."""
    running: list[RunningGateway] = []

    def start(settings: Settings) -> RunningGateway:
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.gateway_port or free_port(),
            log_level="warning",
            lifespan="on",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "no gateway"
            time.sleep(0.05)
        gateway = RunningGateway(f"http://127.0.0.1:{config.port}", server, thread)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


@pytest.fixture
def gateway(
    start_gateway: Callable[[Settings], RunningGateway], gateway_settings: Settings
) -> RunningGateway:
    """The gateway on this test's broker, topics and database."""
    return start_gateway(gateway_settings)


@pytest.fixture
def token(engine: Engine) -> Callable[..., str]:
    """Create a token for a producer with the given scopes; returns its text."""

    def create(producer: str, *scopes: str, kinds: tuple[str, ...] = ("*",)) -> str:
        def work(conn: Any) -> str:
            grants.grant(conn, producer, scopes, kinds, granted_by="tests")
            return grants.create_token(conn, producer, _now())[1]

        return in_transaction(engine, work)

    return create


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
