"""The event schemas in `schemas/` are valid JSON Schema 2020-12 with valid examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from klimapuls.core.validation import EVENT_KINDS, schema_name, validate_event

SCHEMAS = Path(__file__).parent.parent / "schemas"


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_family_has_a_valid_versioned_schema(kind: str) -> None:
    path = SCHEMAS / f"{schema_name(kind)}.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema"]["const"] == schema_name(kind)
    for envelope in ("schema", "event_id", "producer", "reported_at"):
        assert envelope in schema["required"]


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_the_example_of_every_family_validates(kind: str) -> None:
    example = json.loads(
        (SCHEMAS / "examples" / f"{schema_name(kind)}.json").read_text(encoding="utf-8")
    )
    assert validate_event(kind, example) == example


def test_no_schema_file_without_a_family() -> None:
    names = {p.name for p in SCHEMAS.glob("*.json")}
    assert names == {f"{schema_name(k)}.json" for k in EVENT_KINDS}
