"""Fixtures of the board tests: a database filled with the demo mix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine

from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage.db import create_db_engine
from tests.conftest import TEMPLATE_DB
from tests.grafana.test_dashboards import fill_with_demo


@pytest.fixture(scope="module")
def filled_engine(postgres: EmbeddedPostgres) -> Iterator[Engine]:
    """A database holding the whole demo mix, run through every service's handler."""
    name = f"grafana_{uuid.uuid4().hex[:8]}"
    admin = postgres.url("postgres").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    engine = create_db_engine(postgres.url(name))
    fill_with_demo(engine)
    yield engine
    engine.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
