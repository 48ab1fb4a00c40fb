"""`klimapuls tokens` on a real database; the gateway's Kafka options."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from klimapuls.cli import app
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
