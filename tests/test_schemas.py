"""The schemas in `schemas/` are valid JSON Schema 2020-12 with valid examples.

Inbound families (what producers send) and outbound contracts (what the
services publish: status changes, series changes, dead letters) alike; the
outbound messages the code builds validate against their schemas too.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from klimapuls.core.deadletter import DeadLetter
from klimapuls.core.errors import EventValidationError
from klimapuls.core.messages import SeriesChange, TargetStatusChange
from klimapuls.core.model import Target
from klimapuls.core.targets import evaluate
from klimapuls.core.validation import (
    EVENT_KINDS,
    OUTBOUND_KINDS,
    schema_name,
    validate_event,
)

SCHEMAS = Path(__file__).parent.parent / "schemas"
NOW = datetime(2025, 5, 2, 8, 15, tzinfo=UTC)


def _schema(kind: str) -> dict[str, object]:
    path = SCHEMAS / f"{schema_name(kind)}.json"
    schema: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@pytest.mark.parametrize("kind", EVENT_KINDS + OUTBOUND_KINDS)
def test_every_family_has_a_valid_versioned_schema(kind: str) -> None:
    schema = _schema(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema"]["const"] == schema_name(kind)  # type: ignore[index]
    assert "schema" in schema["required"]  # type: ignore[operator]


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_inbound_event_carries_the_envelope(kind: str) -> None:
    for envelope in ("schema", "event_id", "producer", "reported_at"):
        assert envelope in _schema(kind)["required"]  # type: ignore[operator]


@pytest.mark.parametrize("kind", EVENT_KINDS + OUTBOUND_KINDS)
def test_the_example_of_every_family_validates(kind: str) -> None:
    example = json.loads(
        (SCHEMAS / "examples" / f"{schema_name(kind)}.json").read_text(encoding="utf-8")
    )
    assert validate_event(kind, example) == example


def test_no_schema_file_without_a_family() -> None:
    names = {p.name for p in SCHEMAS.glob("*.json")}
    assert names == {f"{schema_name(k)}.json" for k in EVENT_KINDS + OUTBOUND_KINDS}


def test_the_messages_the_services_build_fit_their_contracts() -> None:
    target = Target("t", 2, "101", "co2e_total", 2030, 1990, reduction_pct=50)
    progress = evaluate(target, {}, date(2025, 1, 1))
    change = TargetStatusChange.between(("on_track", False), progress, NOW)
    from dataclasses import replace

    validate_event("target_status", replace(change, id=7).as_json())
    notice = SeriesChange.of("co2", ["co2e_total"], ["101", "1084"], NOW)
    validate_event("series_change", notice.as_json())
    letter = DeadLetter.rejected(
        kind="co2_account",
        origin="co2-account:0:1",
        payload=b"\x00\xff" * 100_000,
        field="$",
        reason="not valid JSON",
        rejected_by="co2",
        rejected_at=NOW,
    )
    validate_event("dead_letter", json.loads(letter.to_json()))
    assert TargetStatusChange.from_json(replace(change, id=7).to_json()).id == 7
    assert SeriesChange.from_json(notice.to_json()) == notice


def test_a_fleet_example_with_its_bus_ids_validates() -> None:
    example = json.loads(
        (SCHEMAS / "examples" / "fleet_status.v1.json").read_text(encoding="utf-8")
    )
    total = sum(example["buses"].values())
    listed = {**example, "bus_ids": [f"v{n}" for n in range(total)]}
    assert validate_event("fleet_status", listed) == listed


@pytest.mark.parametrize(
    ("bus_ids", "reason"),
    [
        (["1001", "1001"], "non-unique"),
        (["1001", ""], "should be non-empty"),
        (["1001"], "lists 1 bus but `buses` counts 2 buses"),
        (["1001", " "], "a bus id is blank"),
    ],
)
def test_fleet_bus_ids_are_unique_non_empty_and_as_many_as_counted(
    bus_ids: list[str], reason: str
) -> None:
    event = {
        "schema": "fleet_status.v1",
        "event_id": "movia:ballerup:2025-04-01",
        "producer": "movia",
        "reported_at": "2025-04-02T08:00:00+02:00",
        "operator": "movia",
        "garage": "Ballerup",
        "date": "2025-04-01",
        "buses": {"diesel": 1, "battery_electric": 1},
        "bus_ids": bus_ids,
    }
    with pytest.raises(EventValidationError) as caught:
        validate_event("fleet_status", event)
    assert [i.field.split("[")[0].split(".")[0] for i in caught.value.issues] == [
        "bus_ids"
    ]
    assert reason in str(caught.value)
