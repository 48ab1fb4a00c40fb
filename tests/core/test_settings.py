"""Settings come from the environment, and missing ones are named."""

from __future__ import annotations

import pytest

from klimapuls.core.errors import ConfigurationError
from klimapuls.settings import Settings


def test_services_name_the_missing_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        Settings().require_database_url()


def test_services_name_the_missing_bootstrap_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(ConfigurationError, match="KAFKA_BOOTSTRAP_SERVERS"):
        Settings().require_bootstrap_servers()


def test_standard_names_and_prefixed_ones_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u:secret@db/k")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("KLIMAPULS_TOPIC_PREFIX", "staging.")
    settings = Settings()
    assert settings.require_database_url().endswith("@db/k")
    assert "secret" not in repr(settings)  # DSNs and passwords are masked
    assert "hunter2" not in repr(settings)
    assert settings.topics.co2_account == "staging.co2-account"
    options = settings.kafka.kafka_python_options()
    assert options["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert options["sasl_plain_password"] == "hunter2"
