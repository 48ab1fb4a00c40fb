"""Importing into the running platform: the VIP table -> reports, missing reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.settings import Settings
from klimapuls.stack.runner import Stack
from tests.helpers import rows, scalar, wait_for

pytestmark = pytest.mark.timeout(180)

VIP_TABLE = (
    Path(__file__).resolve().parents[2]
    / "services"
    / "klimapuls"
    / ("core/data/vip_infrastructure_status.csv")
)


def test_the_imported_vip_table_shows_missing_reports_and_lone_initiatives(
    run_services: Callable[..., Stack],
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.require_bootstrap_servers())
    monkeypatch.setenv("KLIMAPULS_TOPIC_PREFIX", settings.topic_prefix)
    run_services("initiatives", "deadletter")
    runner = CliRunner()

    result = runner.invoke(app, ["import", "vip-status", str(VIP_TABLE)])
    assert result.exit_code == 0, result.output
    assert "79 events sent (2022-10: 39, 2023-10: 40)" in result.output
    bad = tmp_path / "regnskab.csv"
    bad.write_text(
        "Kommune;År;Sektor;Ton CO2e;Opgjort\nKøbnhavn;2022;Energi;1;2024-05-01\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["import", "co2-account", str(bad)])
    assert result.exit_code == 1
    assert "sent to the dead-letter topic" in result.output

    wait_for(
        lambda: scalar(engine, "SELECT count(*) FROM initiative_status_report"),
        lambda n: n == 79,
    )
    missing = rows(
        engine,
        "SELECT round, name, tovholdere FROM "
        "initiative_missing_report ORDER BY round, name",
    )
    per_round = {
        r: [m for m in missing if m["round"] == r] for r in ("2022-10", "2023-10")
    }
    assert len(missing) == 10 + 9
    names_2023 = {m["name"] for m in per_round["2023-10"]}
    assert {
        "Afskaffelse af brugerbetaling Kronprinsesse Marys Bro",
        "Udvidelse af Amagermotorvejen til betjening af Holmene",
        "Udvidelse af Amagermotorvejen (VVM)",
        "Pulje til Støj",
    } <= names_2023
    bro = next(m for m in per_round["2023-10"] if m["name"].startswith("Afskaffelse"))
    assert bro["tovholdere"] == ["Frederikssund"]
    assert "Anlæg af fjern- og regionaltogsperroner på Glostrup Station" in {
        m["name"] for m in per_round["2022-10"]
    }
    lone = {
        r["name"] for r in rows(engine, "SELECT name FROM initiative_without_tovholder")
    }
    assert lone == {
        "Pulje til Støj",
        "Pulje til Cyklisme",
        "Initiativ for klimavenlig asfalt (inkl. afgiftstab)",
        "Pulje til ladeinfrastruktur langs statsvejnettet",
        "Forsøg med støjstærekasser",
    }
    assert scalar(engine, "SELECT count(*) FROM tovholder_handover") == 0

    letter = wait_for(
        lambda: rows(engine, "SELECT * FROM dead_letter"), lambda r: len(r) == 1
    )[0]
    assert letter["kind"] == "co2_account" and letter["field"] == "Kommune"
    assert letter["origin"] == "regnskab.csv:2"
    assert "row 2" in letter["reason"] and "Købnhavn" in letter["payload"]

    # Importing the same table again stores nothing new.
    result = runner.invoke(app, ["import", "vip-status", str(VIP_TABLE)])
    assert result.exit_code == 0
    marker = tmp_path / "marker.csv"
    marker.write_text(
        "project,tovholdere,status_okt_2024\nRing 5 Syd,Ballerup,Ja\n", encoding="utf-8"
    )
    assert runner.invoke(app, ["import", "vip-status", str(marker)]).exit_code == 0
    wait_for(
        lambda: scalar(engine, "SELECT count(*) FROM initiative_status_report"),
        lambda n: n == 80,
    )
