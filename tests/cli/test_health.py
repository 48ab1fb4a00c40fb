"""`klimapuls healthcheck [--http URL]` and `klimapuls db wait`: what the
deployment's health checks and init step run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from klimapuls.cli import app, main
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
    bad = runner.invoke(app, ["healthcheck", "--http", f"{http_server}/other"])
    assert bad.exit_code == 1
    assert bad.stderr == f"unhealthy: {http_server}/other answered 503\n"
    gone = runner.invoke(app, ["healthcheck", "--http", f"http://127.0.0.1:{DEAD}/"])
    assert gone.exit_code == 1
    assert gone.stderr.startswith(f"unhealthy: http://127.0.0.1:{DEAD}/ did not answer")


def test_every_failed_health_check_is_one_unhealthy_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Docker reserves a health check's exit 2: a malformed setting is 1 too."""
    monkeypatch.setenv("KLIMAPULS_ALERT_HOLD_SECONDS", "soon")
    result = CliRunner().invoke(app, ["healthcheck"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("unhealthy: KLIMAPULS_ALERT_HOLD_SECONDS='soon': "), line
    monkeypatch.delenv("KLIMAPULS_ALERT_HOLD_SECONDS")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u@127.0.0.1:{DEAD}/k")
    result = CliRunner().invoke(app, ["healthcheck"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("unhealthy: cannot reach the database"), line
    result = CliRunner().invoke(app, ["healthcheck", "--http", "nope"])
    assert result.exit_code == 1
    assert result.stderr.startswith("unhealthy: --http 'nope' is not an http(s)")


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--http", "http://localhost:abc/"], {}, "nonnumeric port: 'abc'"),
        (["--http", "http://[::1/"], {}, "Invalid IPv6 URL"),
        (["--http", "http://a..b/"], {}, "is not an address http can use"),
        (
            [],
            {"DATABASE_URL": "postgresql://u:secret@h1:5432,h2:5433/kp"},
            "u:***@h1:5432,h2:5433/kp' has a port that is not a number",
        ),
        (
            [],
            {"DATABASE_URL": "postgresql://u@a..b:5432/kp"},
            "has a host name that is not valid ('a..b')",
        ),
    ],
)
def test_an_address_python_cannot_use_is_one_unhealthy_line_too(
    args: list[str],
    env: dict[str, str],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["healthcheck", *args])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("unhealthy: ") and said in line, line
    assert "secret" not in result.output


def test_a_broker_host_python_cannot_encode_is_named_as_not_valid(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "a..b:9092")
    result = CliRunner().invoke(app, ["healthcheck"])
    assert result.exit_code == 1
    assert result.stderr == (
        "unhealthy: no broker answers (KAFKA_BOOTSTRAP_SERVERS): "
        "a..b:9092: not a valid host name\n"
    )


def test_a_usage_mistake_of_the_probe_exits_1_not_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Docker reserves exit 2; every other command keeps click's 2."""
    for args, code in (
        (["healthcheck", "--http"], 1),
        (["healthcheck", "--nope"], 1),
        (["produce", "--nope"], 2),
    ):
        with pytest.raises(SystemExit) as exited:
            main(args)
        assert exited.value.code == code, args
        assert capsys.readouterr().err.startswith("error: "), args


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
    said = result.stderr
    assert result.exit_code == 1
    assert said.startswith("unhealthy: no broker answers")
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
