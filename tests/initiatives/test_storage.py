"""The initiatives store on real PostgreSQL: seeding, and views vs the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from klimapuls.core.initiatives import (
    StatusReport,
    missing_reports,
    reference_initiatives,
    without_tovholder,
)
from klimapuls.importers import convert
from klimapuls.producer.readers import complete_envelope
from klimapuls.storage import initiatives as repo
from klimapuls.storage.db import in_transaction
from tests.helpers import scalar

VIP_TABLE = (
    Path(__file__).resolve().parents[2]
    / "services/klimapuls/core/data/vip_infrastructure_status.csv"
)
NOW = datetime(2024, 1, 5, tzinfo=UTC)


def vip_events() -> list[dict[str, Any]]:
    def envelope(kind: str, event: dict[str, Any]) -> dict[str, Any]:
        return complete_envelope(kind, event, "pytest", NOW)

    items = convert("vip-status", VIP_TABLE.read_text("utf-8"), envelope)
    return [i.event for i in items if i.event is not None]


def test_seeding_again_changes_nothing(engine: Engine) -> None:
    before = scalar(engine, "SELECT count(*) FROM tovholder_assignment")
    assert in_transaction(engine, repo.seed_initiatives) == 0
    assert scalar(engine, "SELECT count(*) FROM initiative") == 56
    assert scalar(engine, "SELECT count(*) FROM tovholder") == 29 + 2
    assert scalar(engine, "SELECT count(*) FROM tovholder_assignment") == before


def test_the_views_agree_with_the_pure_rules(engine: Engine) -> None:
    events = vip_events()

    def store(conn: Any) -> None:
        repo.register_initiatives(conn, events)
        repo.store_status_reports(conn, events)
        repo.rebuild_timelines(conn, {e["initiative_id"] for e in events})

    in_transaction(engine, store)
    reports = [StatusReport.from_event(e) for e in events]
    expected = {
        (m.round, m.initiative_id, m.tovholdere)
        for m in missing_reports(reference_initiatives(), reports)
    }
    with engine.connect() as conn:
        stored = {
            (r["round"], r["initiative_id"], tuple(r["tovholdere"]))
            for r in repo.missing_reports(conn)
        }
        lone = {r["initiative_id"] for r in repo.without_tovholder(conn)}
        in_2023 = repo.missing_reports(conn, "2023-10")
    assert stored == expected
    assert len(expected) == 10 + 9 and len(in_2023) == 9
    assert lone == {
        i.initiative_id for i in without_tovholder(reference_initiatives(), reports)
    }
