"""`klimapuls healthcheck [--http URL]` and `klimapuls db wait`: what the
deployment's health checks and init step run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.settings import Settings
from tests.cli.test_bad_input import DEAD


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/v1/health" else 503)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_healthcheck_http_is_healthy_only_on_a_2xx_answer(http_server: str) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["healthcheck", "--http", f"{http_server}/v1/health"])
    assert ok.exit_code == 0 and "answered 200" in ok.output
    # Failures reach `klimapuls`'s one-line error handler as KlimapulsError.
    bad = runner.invoke(app, ["healthcheck", "--http", f"{http_server}/other"])
    assert "answered 503" in str(bad.exception)
    gone = runner.invoke(app, ["healthcheck", "--http", f"http://127.0.0.1:{DEAD}/"])
    assert "did not answer" in str(gone.exception)


def test_healthcheck_checks_database_and_broker(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.require_bootstrap_servers())
    result = CliRunner().invoke(app, ["healthcheck"])
    assert result.exit_code == 0, result.output
    # One broker of the list away (a rolling restart): still healthy.
    live = settings.require_bootstrap_servers()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{DEAD},{live}")
    result = CliRunner().invoke(app, ["healthcheck"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{DEAD},127.0.0.1:1")
    result = CliRunner().invoke(app, ["healthcheck"])
    said = str(result.exception)
    assert "no broker answers" in said
    assert f"127.0.0.1:{DEAD}:" in said and "127.0.0.1:1:" in said


def test_db_wait_returns_once_the_database_answers_and_gives_up_in_time(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["db", "wait", "--timeout", "5"])
    assert result.exit_code == 0 and "database answers" in result.output
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql+psycopg://u:p@127.0.0.1:{DEAD}/klimapuls"
    )
    result = CliRunner().invoke(app, ["db", "wait", "--timeout", "2"])
    assert str(result.exception).startswith("gave up after 2 s: could not reach")
