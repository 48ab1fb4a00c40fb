"""The fleet handler on a real PostgreSQL: snapshots in, shares out.

These run the batch handler directly (no broker), so the storage rules are
checked quickly; `test_pipeline.py` runs the same through Kafka.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine

from klimapuls.core.batch import Incoming
from klimapuls.fleet.handlers import FleetHandler
from tests.fleet.factories import fleet_event
from tests.helpers import rows, scalar

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _handler(engine: Engine) -> FleetHandler:
    return FleetHandler(engine, lambda: NOW, name="fleet")


def _batch(*events: dict[str, object], kind: str = "fleet_status") -> list[Incoming]:
    return [
        Incoming(kind, json.dumps(e).encode(), f"test:0:{i}")
        for i, e in enumerate(events)
    ]


def test_snapshots_are_stored_once_and_shares_derived(engine: Engine) -> None:
    handler = _handler(engine)
    ballerup = fleet_event(
        "movia",
        "2024-12-31",
        garage="Ballerup",
        municipality_code="151",
        diesel=6,
        hvo=2,
        battery_electric=2,
    )
    region = fleet_event(
        "region-hovedstaden", "2024-12-31", contract="R-1", hydrogen=5, hybrid=5
    )
    first = handler.handle(_batch(ballerup, region, ballerup))
    again = handler.handle(_batch(ballerup))
    assert (first.stored, first.duplicates) == (2, 1)
    assert (again.stored, again.duplicates) == (0, 1)
    assert scalar(engine, "SELECT count(*) FROM fleet_status") == 2
    shares = {r["scope"]: r for r in rows(engine, "SELECT * FROM fleet_share")}
    assert set(shares) == {"movia", "region-hovedstaden", "1084"}
    assert shares["movia"]["fossil_free_share"] == pytest.approx(40.0)
    assert shares["movia"]["zero_emission_share"] == pytest.approx(20.0)
    assert shares["1084"]["total_buses"] == 20
    assert shares["1084"]["fossil_free_buses"] == 9
    assert shares["1084"]["zero_emission_buses"] == 7
    assert shares["1084"]["units"] == 2


def test_a_restatement_keeps_the_old_row_and_counts_the_new(engine: Engine) -> None:
    handler = _handler(engine)
    first = fleet_event(
        "movia",
        "2024-12-31",
        garage="Ballerup",
        diesel=10,
        reported_at="2025-01-05T08:00:00+00:00",
    )
    restated = fleet_event(
        "movia",
        "2024-12-31",
        garage="Ballerup",
        diesel=5,
        battery_electric=5,
        reported_at="2025-02-05T08:00:00+00:00",
    )
    handler.handle(_batch(first))
    handler.handle(_batch(restated))
    assert scalar(engine, "SELECT count(*) FROM fleet_status") == 2
    assert scalar(
        engine, "SELECT zero_emission_share FROM fleet_share WHERE scope = 'movia'"
    ) == pytest.approx(50.0)
    current = rows(engine, "SELECT event_id, total_buses FROM fleet_status_current")
    assert current == [{"event_id": restated["event_id"], "total_buses": 10}]


def test_a_reused_event_id_with_other_content_is_rejected(engine: Engine) -> None:
    handler = _handler(engine)
    original = fleet_event(
        "movia", "2024-12-31", garage="G", diesel=1, event_id="reused"
    )
    handler.handle(_batch(original))
    result = handler.handle(_batch({**original, "buses": {"diesel": 2}}))
    (letter,) = result.dead_letters
    assert letter.field == "event_id"
    assert "different content" in letter.reason
    assert scalar(engine, "SELECT diesel FROM fleet_status") == 1


def test_the_yearly_view_shows_each_scopes_newest_date_of_a_year(
    engine: Engine,
) -> None:
    _handler(engine).handle(
        _batch(
            fleet_event("movia", "2023-06-30", garage="G", diesel=1),
            fleet_event("movia", "2023-12-31", garage="G", diesel=1, hvo=1),
            fleet_event("movia", "2024-03-31", garage="G", hvo=2),
        )
    )
    yearly = rows(
        engine,
        "SELECT year, date::text, fossil_free_share FROM fleet_share_year "
        "WHERE scope = 'movia' ORDER BY year",
    )
    assert yearly == [
        {"year": 2023, "date": "2023-12-31", "fossil_free_share": 50.0},
        {"year": 2024, "date": "2024-03-31", "fossil_free_share": 100.0},
    ]


def test_a_bus_two_garages_list_in_one_batch_is_stored_under_the_first(
    engine: Engine,
) -> None:
    def listed(garage: str, *buses: str) -> dict[str, object]:
        event = fleet_event(
            "movia", "2025-04-01", garage=garage, battery_electric=len(buses)
        )
        return {**event, "bus_ids": list(buses)}

    ballerup, gladsaxe = listed("Ballerup", "1001"), listed("Gladsaxe", "7", "1001")
    result = _handler(engine).handle(_batch(ballerup, gladsaxe, ballerup))
    assert (result.stored, result.duplicates) == (1, 1)
    (letter,) = result.dead_letters
    assert letter.field == "bus_ids"
    assert "'1001'" in letter.reason and "'Ballerup'" in letter.reason
    assert [tuple(r.values()) for r in rows(engine, "SELECT * FROM fleet_bus")] == [
        ("movia", date(2025, 4, 1), "1001", "", "Ballerup", ballerup["event_id"])
    ]
    assert (
        scalar(engine, "SELECT total_buses FROM fleet_share WHERE scope = 'movia'") == 1
    )
