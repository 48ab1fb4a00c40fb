"""Dashboards under `grafana/`: Grafana's own schema accepts them, and every
panel query runs against the real database with data in it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import Incoming
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.simulator import demo_events
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage.db import create_db_engine
from klimapuls.storage.deadletters import store_dead_letters
from klimapuls.streaming import BatchHandler
from klimapuls.targets.handlers import TargetsHandler
from tests.conftest import TEMPLATE_DB

GRAFANA = Path(__file__).parent.parent.parent / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Pinned so the check is repeatable; @grafana/schema 13.x is Grafana 13's schema.
NPM_PACKAGES = ["typescript@7.0.2", "@grafana/schema@13.2.3"]


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


@pytest.fixture(scope="session")
def schema_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with TypeScript and @grafana/schema installed from npm."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: cannot fetch Grafana's schema")
    folder = tmp_path_factory.mktemp("grafana-schema")
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", *NPM_PACKAGES],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder


def test_there_are_dashboards() -> None:
    assert DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_grafana_schema_accepts_the_dashboard(path: Path, schema_checker: Path) -> None:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    source = schema_checker / f"{path.stem}.ts"
    source.write_text(
        'import { Dashboard } from "@grafana/schema";\n'
        f"const d: Dashboard = {json.dumps(dashboard, ensure_ascii=False)};\n"
        "export default d;\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            "npx",
            "tsc",
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
            source.name,
        ],
        cwd=schema_checker,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_uses_the_provisioned_datasource(path: Path) -> None:
    provisioning = (
        GRAFANA / "provisioning" / "datasources" / "klimapuls.yaml"
    ).read_text(encoding="utf-8")
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            uid = target["datasource"]["uid"]
            assert f"uid: {uid}" in provisioning


_HANDLERS: dict[str, Callable[[Engine, Callable[[], datetime]], BatchHandler]] = {
    "co2_account": Co2Handler,
    "fleet_status": FleetHandler,
    "mobility_count": MobilityHandler,
    "initiative_status": InitiativeHandler,
    "target": TargetsHandler,
}


def fill_with_demo(engine: Engine, days: int = 2) -> None:
    """Run the whole demo mix through every service's handler, as on the topics."""
    clock = lambda: datetime(2026, 6, 2, tzinfo=UTC)  # noqa: E731
    by_kind: dict[str, list[Incoming]] = {}
    for i, event in enumerate(demo_events(days=days)):
        body = event.body
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        by_kind.setdefault(event.kind, []).append(
            Incoming(event.kind, value, f"demo:0:{i}")
        )
    for kind, make in _HANDLERS.items():
        handler = make(engine, clock)
        messages = by_kind.get(kind, [])
        for start in range(0, len(messages), 500):
            result = handler.handle(messages[start : start + 500])
            with engine.begin() as conn:
                store_dead_letters(conn, result.dead_letters)
    # The targets service last, as if every series change had reached it.
    TargetsHandler(engine, clock).refresh()


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


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_query_runs_against_the_database(
    path: Path, filled_engine: Engine
) -> None:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    empty = []
    with filled_engine.connect() as conn:
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                rows = conn.execute(text(target["rawSql"])).all()
                if not rows:
                    empty.append(panel["title"])
    assert not empty, f"panels without rows on a filled database: {empty}"


def test_the_installed_package_ships_every_dashboard() -> None:
    from klimapuls.dashboards import load_dashboards

    assert [d["uid"] for d in load_dashboards()] == [
        json.loads(p.read_text(encoding="utf-8"))["uid"] for p in DASHBOARDS
    ]


_RELATION = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)", re.IGNORECASE)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_read_only_the_documented_board_views(path: Path) -> None:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            sql = target["rawSql"]
            ctes = set(re.findall(r"\b(\w+)\s+AS\s*\(", sql, re.IGNORECASE))
            for relation in _RELATION.findall(sql):
                assert relation.startswith("board.") or relation in ctes, (
                    panel["title"],
                    relation,
                )
            # The path is the core's (board.emission_vs_path), never recomputed.
            assert "target_year - " not in sql and "(t.y - t.b)" not in sql
