"""Validation names the field and the reason for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from klimapuls.core.errors import EventValidationError
from klimapuls.core.validation import decode_event, validate_event
from tests.helpers import co2_event, target_event

EXAMPLES = Path(__file__).parent.parent.parent / "schemas" / "examples"


def _issues(kind: str, event: object) -> list[tuple[str, str]]:
    with pytest.raises(EventValidationError) as caught:
        validate_event(kind, event)
    return [(i.field, i.reason) for i in caught.value.issues]


def test_a_valid_account_passes_unchanged() -> None:
    event = co2_event("101", 2022, "energy", 10.0)
    assert validate_event("co2_account", event) == event


def test_an_unknown_municipality_names_the_field() -> None:
    [(field, reason)] = _issues("co2_account", co2_event("999", 2022, "energy", 1.0))
    assert field == "municipality_code"
    assert "'999'" in reason


def test_a_missing_field_is_named_not_its_parent() -> None:
    event = co2_event("101", 2022, "energy", 1.0)
    del event["tonnes_co2e"]
    assert _issues("co2_account", event) == [("tonnes_co2e", "is required")]


def test_an_unknown_field_is_rejected_by_name() -> None:
    event = {**co2_event("101", 2022, "energy", 1.0), "tonnes": 3}
    assert _issues("co2_account", event) == [
        ("tonnes", "unknown field (not in the schema)")
    ]


def test_every_issue_is_reported_at_once() -> None:
    event = {**co2_event("101", 2022, "fishing", -1.0), "year": "2022"}
    fields = {f for f, _ in _issues("co2_account", event)}
    assert fields == {"sector", "tonnes_co2e", "year"}


def test_a_bad_timestamp_is_caught_by_format() -> None:
    event = {**co2_event("101", 2022, "energy", 1.0), "reported_at": "yesterday"}
    [(field, _reason)] = _issues("co2_account", event)
    assert field == "reported_at"


def test_figures_cannot_be_computed_before_the_year_ended() -> None:
    event = co2_event("101", 2022, "energy", 1.0, "2022-10-01")
    [(field, reason)] = _issues("co2_account", event)
    assert field == "vintage"
    assert "before the year ended" in reason


def test_an_event_on_the_wrong_topic_names_the_schema_field() -> None:
    [(field, reason)] = _issues("target", co2_event("101", 2022, "energy", 1.0))
    assert field == "schema"
    assert "target.v1" in reason


def test_a_target_must_end_after_its_baseline() -> None:
    [(field, _)] = _issues("target", target_event("t-1", baseline_year=2030))
    assert field == "target_year"


def test_an_emission_target_needs_a_reduction() -> None:
    event = target_event("t-2")
    del event["reduction_pct"]
    fields = [f for f, _ in _issues("target", event)]
    assert "reduction_pct" in fields


def test_a_body_that_is_not_json_is_reported_as_the_whole_event() -> None:
    with pytest.raises(EventValidationError) as caught:
        decode_event("co2_account", b"{oops")
    assert caught.value.field == "$"
    assert "not valid JSON" in str(caught.value)


def test_a_json_list_is_not_an_event() -> None:
    assert _issues("co2_account", [1, 2]) == [("$", "an event must be a JSON object")]


def test_a_round_in_year_0_is_an_issue_not_a_crash() -> None:
    # Found by schemathesis through the gateway: `date(0, 1, 1)` raised.
    event = json.loads(
        (EXAMPLES / "initiative_status.v1.json").read_text(encoding="utf-8")
    )
    for round_, effective in (("0000-01", "2024-01-01"), ("0000-01", None)):
        with pytest.raises(EventValidationError) as caught:
            validate_event(
                "initiative_status",
                {**event, "round": round_, "effective_date": effective},
            )
        assert caught.value.field == "round"
    # A round far in the future is refused too, by the horizon (not a crash).
    late = {**event, "round": "9999-12", "effective_date": "9999-12-01"}
    with pytest.raises(EventValidationError) as caught:
        validate_event("initiative_status", late)
    assert caught.value.field == "round"


@pytest.mark.parametrize(
    "body",
    [b"18446744073709551616", b'{"a": 100000000000000000000}', b"[1e400, -0, 1.5]"],
)
def test_numbers_are_read_as_the_standard_library_reads_them(body: bytes) -> None:
    # orjson makes an integer beyond 64 bits a float: such bodies take the
    # standard library's path, which keeps them exact.
    from klimapuls.core.validation import parse_json

    value, expected = parse_json(body), json.loads(body)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("field", ["tonnes_co2e", "year"])
def test_an_integer_beyond_64_bits_is_too_large_not_a_float(field: str) -> None:
    event = co2_event("101", 2022, "energy", 1.0)
    event[field] = 10**20
    with pytest.raises(EventValidationError, match=f"{field}: .* is too large"):
        decode_event("co2_account", json.dumps(event).encode())
