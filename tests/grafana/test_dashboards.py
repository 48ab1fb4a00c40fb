"""Dashboards under `grafana/`: Grafana's own schema accepts them, and every
panel query runs against the real database with data in it."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from klimapuls.co2.handlers import Co2Handler, Incoming
from klimapuls.core.reference import municipality_codes
from tests.helpers import co2_event

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


def _fill(engine: Engine) -> None:
    """Two complete years for the region plus a bad event, through the real handler."""
    handler = Co2Handler(engine, lambda: datetime(2026, 11, 1, tzinfo=UTC))
    batch = [
        Incoming(
            "co2_account",
            json.dumps(co2_event(code, year, "energy", t)).encode(),
            f"test:0:{i}",
        )
        for i, (code, year, t) in enumerate(
            (c, y, t)
            for c in municipality_codes()
            for y, t in ((1990, 100.0), (2024, 40.0))
        )
    ]
    batch.append(Incoming("co2_account", b"{bad", "test:0:999"))
    result = handler.handle(batch)
    with engine.begin() as conn:
        from klimapuls.storage.repository import store_dead_letters

        store_dead_letters(conn, result.dead_letters)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_query_runs_against_the_database(
    path: Path, engine: Engine
) -> None:
    _fill(engine)
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    empty = []
    with engine.connect() as conn:
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
