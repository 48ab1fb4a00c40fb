"""The initiatives pipeline end to end: reports on the real broker -> rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.producer import EventProducer
from klimapuls.stack.runner import Stack
from tests.helpers import rows, scalar, wait_for

pytestmark = pytest.mark.timeout(180)

RING_4_SYD = "udvidelse-af-motorring-4-ved-koebenhavn-sydlig"
HERLEV_STATION = "flytning-af-herlev-station"


def status_event(
    initiative: str, round_: str, tovholdere: list[str], **fields: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "schema": "initiative_status.v1",
        "event_id": f"test:{initiative}:{round_}",
        "producer": "pytest",
        "reported_at": f"{round_}-15T12:00:00+02:00",
        "initiative_id": initiative,
        "round": round_,
        "status": "confirmed",
        "tovholdere": tovholdere,
    }
    event.update(fields)
    return event


def _count(engine: Engine, table: str) -> int:
    return int(scalar(engine, f"SELECT count(*) FROM {table}"))


def test_reports_give_rows_missing_reports_and_a_dated_hand_over(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("initiatives", "deadletter")
    first = status_event(RING_4_SYD, "2022-10", ["Høje-Taastrup"], status="received")
    second = status_event(RING_4_SYD, "2023-10", ["Høje-Taastrup"])
    handed = status_event(RING_4_SYD, "2024-10", ["Ishøj"], effective_date="2024-06-01")
    herlev = status_event(HERLEV_STATION, "2024-10", ["Herlev"], status="delayed")
    newcomer = status_event(
        "cykelsuperstier-etape-9",
        "2024-10",
        ["Gladsaxe", "Region Hovedstaden"],
        initiative_name="Cykelsuperstier etape 9",
        group="cykel",
        programme="vip_infrastruktur",
    )
    # The hand-over first: arrival order must not matter.
    for event in (handed, first, second, second, herlev, newcomer):
        producer.send("initiative_status", event)
    producer.flush()
    wait_for(lambda: _count(engine, "initiative_status_report"), lambda n: n == 5)

    [handover] = rows(
        engine,
        "SELECT * FROM tovholder_handover WHERE initiative_id = :i",
        i=RING_4_SYD,
    )
    assert handover["round"] == "2024-10"
    assert handover["effective_date"] == date(2024, 6, 1)
    assert (handover["previous"], handover["new"]) == (["Høje-Taastrup"], ["Ishøj"])
    kept = rows(
        engine,
        "SELECT tovholder, valid_from, valid_to FROM "
        "tovholder_assignment WHERE initiative_id = :i "
        "ORDER BY valid_from",
        i=RING_4_SYD,
    )
    assert kept == [
        {
            "tovholder": "Høje-Taastrup",
            "valid_from": date(2022, 10, 1),
            "valid_to": date(2024, 6, 1),
        },
        {"tovholder": "Ishøj", "valid_from": date(2024, 6, 1), "valid_to": None},
    ]

    missing = rows(
        engine, "SELECT round, initiative_id, tovholdere FROM initiative_missing_report"
    )
    by_round: dict[str, set[str]] = {}
    for m in missing:
        by_round.setdefault(m["round"], set()).add(m["initiative_id"])
    # 49 infrastructure initiatives plus the newcomer (expected from 2024-10).
    assert len(by_round["2022-10"]) == 48 and RING_4_SYD not in by_round["2022-10"]
    assert len(by_round["2024-10"]) == 50 - 3
    assert "cykelsuperstier-etape-9" not in by_round["2024-10"]
    stoej = [m for m in missing if m["initiative_id"] == "pulje-til-stoej"]
    assert {m["round"] for m in stoej} == {"2022-10", "2023-10", "2024-10"}
    assert all(m["tovholdere"] == [] for m in stoej)
    nordhavn = next(
        m
        for m in missing
        if m["initiative_id"] == "ombygning-af-nordhavn-station"
        and m["round"] == "2023-10"
    )
    assert nordhavn["tovholdere"] == ["København"]
    # The VIP climate projects report in rounds of their own: none missing here.
    assert not [m for m in missing if m["initiative_id"] == "cirkulaere-indkoeb"]

    registered = rows(
        engine,
        "SELECT name, programme, source, since FROM initiative "
        "WHERE initiative_id = 'cykelsuperstier-etape-9'",
    )
    assert registered == [
        {
            "name": "Cykelsuperstier etape 9",
            "programme": "vip_infrastruktur",
            "source": "event",
            "since": date(2024, 10, 1),
        }
    ]
    without = {
        r["initiative_id"]
        for r in rows(engine, "SELECT initiative_id FROM initiative_without_tovholder")
    }
    assert "pulje-til-stoej" in without and RING_4_SYD not in without

    # A restatement of a round: the newest report counts, the old one is kept.
    restated = status_event(
        RING_4_SYD,
        "2024-10",
        ["Høje-Taastrup"],
        event_id="test:ring4:2024-10:restated",
        reported_at="2024-11-01T09:00:00+01:00",
    )
    producer.send("initiative_status", restated)
    producer.flush()
    wait_for(lambda: _count(engine, "tovholder_handover"), lambda n: n == 0)
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM initiative_status_report WHERE "
            "initiative_id = :i AND round = '2024-10'",
            i=RING_4_SYD,
        )
        == 2
    )
    assert rows(
        engine,
        "SELECT tovholdere, event_id FROM initiative_status_current "
        "WHERE initiative_id = :i AND round = '2024-10'",
        i=RING_4_SYD,
    ) == [{"tovholdere": ["Høje-Taastrup"], "event_id": restated["event_id"]}]
    assert _count(engine, "dead_letter") == 0


def test_bad_reports_are_dead_lettered_with_the_reason(
    run_services: Callable[..., Stack], producer: EventProducer, engine: Engine
) -> None:
    run_services("initiatives", "deadletter")
    good = status_event(RING_4_SYD, "2023-10", ["Høje-Taastrup"], event_id="reused")
    producer.send("initiative_status", good)
    producer.flush()
    wait_for(lambda: _count(engine, "initiative_status_report"), lambda n: n == 1)

    unknown = status_event(RING_4_SYD, "2023-10", ["Hoje Taastrup"], event_id="typo")
    missing = status_event(
        RING_4_SYD, "2022-10", [], status="missing", event_id="missing-status"
    )
    for event in (unknown, missing, {**good, "status": "delayed"}):
        producer.send_raw("initiative_status", json.dumps(event).encode())
    producer.send_raw("initiative_status", b"{not json")
    producer.flush()

    letters = wait_for(
        lambda: rows(engine, "SELECT * FROM dead_letter"), lambda r: len(r) == 4
    )
    by_event = {r["event_id"]: r for r in letters}
    assert by_event["typo"]["field"] == "tovholdere.0"
    assert "'Hoje Taastrup' is not a municipality" in by_event["typo"]["reason"]
    assert by_event["missing-status"]["field"] == "status"
    assert by_event["reused"]["field"] == "event_id"
    assert "different content" in by_event["reused"]["reason"]
    assert by_event[None]["field"] == "$"
    assert all(r["rejected_by"] == "initiatives" for r in letters)
    assert scalar(engine, "SELECT status FROM initiative_status_report") == "confirmed"
