"""`klimapuls tokens` on a real database; the gateway's Kafka options."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from klimapuls.cli import app, main
from klimapuls.core.errors import KlimapulsError
from klimapuls.settings import KafkaSettings
from tests.helpers import rows


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, KlimapulsError):
        # What `main` prints for a user's mistake: one line, exit 1.
        return 1, str(result.exception)
    return result.exit_code, result.output


def test_tokens_are_shown_once_listed_without_secret_and_revocable(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out = _run(
        "tokens", "create", "--producer", "frederiksberg", "--scope", "147"
    )
    assert code == 0, out
    text = next(w for w in out.split() if w.startswith("kpt_"))
    token_id, secret = text.removeprefix("kpt_").split("_", 1)

    code, listed = _run("tokens", "list")
    assert code == 0 and token_id in listed and secret not in listed
    assert "frederiksberg" in listed
    [row] = rows(engine, "SELECT * FROM producer_token")
    assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()

    assert _run("tokens", "revoke", token_id)[0] == 0
    code, again = _run("tokens", "revoke", token_id)
    assert code == 1 and "no live token" in again
    assert rows(engine, "SELECT revoked_at FROM producer_token")[0]["revoked_at"]


def test_tokens_refuse_typos_and_built_in_producers_in_one_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    for args, says in (
        (("--producer", "x", "--scope", "Frederiksberg"), "is not a scope"),
        (("--producer", "x", "--scope", "147", "--kind", "co2"), "--kind"),
        (("--producer", "klimapuls-cli", "--scope", "147"), "built-in"),
    ):
        code, out = _run("tokens", "create", *args)
        assert code == 1 and says in out, out
        assert "Traceback" not in out


def test_the_gateway_uses_the_services_kafka_tls_and_sasl_settings() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="k1:9093,k2:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="klimapuls",
        sasl_password="secret",
    )
    aio, python = kafka.aiokafka_options(), kafka.kafka_python_options()
    for key in ("bootstrap_servers", "security_protocol", "sasl_mechanism"):
        assert aio[key] == python[key]
    assert aio["sasl_plain_password"] == "secret"
    assert aio["ssl_context"] is not None


GOOD_ENV = {
    "DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:5432/klimapuls",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
}

#: (options, environment changes, what the one line must name)
BAD_GATEWAY = [
    (("--port", "70000"), {}, "--port '70000' is not a port: give 1 to 65535"),
    (("--port", "-1"), {}, "--port '-1' is not a port"),
    (("--port", "0"), {}, "--port '0' is not a port"),
    (("--port", "http"), {}, "--port 'http' is not a port"),
    (("--host", "bad host"), {}, "--host 'bad host' is not an address"),
    (("--host", ""), {}, "--host '' is not an address"),
    (("--host", "999.1.1.1"), {}, "--host '999.1.1.1' is not an address of this"),
    (("--host", "192.0.2.1"), {}, "cannot listen on 192.0.2.1:8080 (--host)"),
    ((), {"KLIMAPULS_GATEWAY_HOST": "no such host."}, "KLIMAPULS_GATEWAY_HOST"),
    ((), {"DATABASE_URL": None}, "DATABASE_URL is not set"),
    ((), {"KAFKA_BOOTSTRAP_SERVERS": None}, "KAFKA_BOOTSTRAP_SERVERS is not set"),
    ((), {"DATABASE_URL": "not-a-url"}, "is not a database URL"),
    ((), {"DATABASE_URL": "sqlite:///x.db"}, "needs PostgreSQL"),
    ((), {"KAFKA_BOOTSTRAP_SERVERS": "nohost"}, "is not host:port"),
    ((), {"KLIMAPULS_GATEWAY_PORT": "abc"}, "KLIMAPULS_GATEWAY_PORT='abc': input"),
    ((), {"KLIMAPULS_GATEWAY_PORT": "99999"}, "KLIMAPULS_GATEWAY_PORT='99999'"),
    (
        (),
        {"KLIMAPULS_GATEWAY_RATE_LIMIT": "lots"},
        "KLIMAPULS_GATEWAY_RATE_LIMIT='lots' is not a rate",
    ),
    (
        (),
        {"KLIMAPULS_GATEWAY_MAX_BODY_BYTES": "-5"},
        "KLIMAPULS_GATEWAY_MAX_BODY_BYTES='-5'",
    ),
    ((), {"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS'"),
]


@pytest.mark.parametrize(
    ("options", "env", "names"), BAD_GATEWAY, ids=[b[2][:40] for b in BAD_GATEWAY]
)
def test_bad_gateway_options_and_settings_give_one_line_and_exit_2(
    options: tuple[str, ...],
    env: dict[str, str | None],
    names: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in list(os.environ):
        if name.startswith(("KAFKA_", "KLIMAPULS_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    for name, value in {**GOOD_ENV, **env}.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main(["gateway", *options])
    out, err = capsys.readouterr()
    assert exited.value.code == 2, out + err
    [line] = err.strip().splitlines()
    assert names in line
    assert "Traceback" not in out + err and "Error" not in out + err


def test_a_gateway_port_in_use_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        with pytest.raises(SystemExit) as exited:
            main(["gateway", "--port", port])
    out, err = capsys.readouterr()
    assert exited.value.code == 1, out + err
    assert err.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use; give another with --port"
    ]
