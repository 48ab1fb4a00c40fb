"""Folding events into progress inputs: the rules the services apply, in memory."""

from __future__ import annotations

import json
from datetime import date

import pytest

from klimapuls.core.accounts import YearValue
from klimapuls.core.errors import EventValidationError
from klimapuls.core.fold import EventFold, read_jsonl
from klimapuls.core.model import INDICATOR_UNITS
from klimapuls.core.progress import MeasuredSeries, evaluate_all
from klimapuls.core.reference import (
    municipality_codes,
    scope_codes,
    seed_target_events,
)
from klimapuls.core.validation import load_schema, validate_event
from tests.helpers import co2_event, target_event

AS_OF = date(2024, 6, 1)


def _progress(fold: EventFold) -> dict[str, dict[str, object]]:
    return {p.target_id: p.as_json() for p in evaluate_all(fold.facts(), AS_OF)}


def _emissions(fold: EventFold) -> dict[str, dict[int, YearValue]]:
    return MeasuredSeries(fold.facts(), AS_OF).emissions()


def test_every_target_of_the_domain_brief_is_seeded_and_valid() -> None:
    events = seed_target_events()
    ids = [e["target_id"] for e in events]
    assert ids == [
        "region-co2-2030",
        "region-neutral-2045",
        "dk-climate-law-2030",
        "movia-fossil-free-2030",
        "region-zero-emission-buses",
        "sustainable-trips-2035",
        "bike-trips-2030",
        "youth-green-commute",
        "climate-plans-2024",
        "raw-materials-2035",
        "drinking-water-2030",
    ]
    assert len({e["event_id"] for e in events}) == len(events)
    for event in events:
        validate_event("target", event)
    by_id = {e["target_id"]: e for e in events}
    assert by_id["region-zero-emission-buses"]["target_year"] is None
    assert by_id["movia-fossil-free-2030"]["scope"] == "movia"
    assert by_id["sustainable-trips-2035"]["baseline_value"] == 56
    assert by_id["sustainable-trips-2035"]["target_value"] == 66.7


def test_the_schema_lists_exactly_the_reference_scopes_and_indicators() -> None:
    properties = load_schema("target.v1")["properties"]
    assert properties["scope"]["enum"] == list(scope_codes())
    assert set(properties["indicator"]["enum"]) == set(INDICATOR_UNITS)


def test_emission_targets_need_a_deadline_other_targets_may_have_none() -> None:
    with pytest.raises(EventValidationError) as raised:
        validate_event("target", target_event("no-deadline", target_year=None))
    assert raised.value.field == "target_year"
    no_deadline = target_event(
        "zero-buses",
        indicator="zero_emission_bus_share",
        target_year=None,
        reduction_pct=None,
        baseline_year=2020,
        target_value=100,
    )
    assert validate_event("target", no_deadline) == no_deadline


def test_dk2020_targets_of_a_municipality_use_its_own_series() -> None:
    fold = EventFold()
    for year, tonnes in {2010: 1000.0, 2021: 600.0, 2022: 560.0, 2023: 520.0}.items():
        fold.add("co2_account", co2_event("101", year, "energy", tonnes))
    fold.add(
        "target",
        target_event("kbh-2030", scope="101", baseline_year=2010, reduction_pct=70),
    )
    fold.add(
        "target",
        target_event(
            "kbh-2050",
            scope="101",
            baseline_year=2010,
            reduction_pct=100,
            target_year=2050,
        ),
    )
    progress = _progress(fold)
    assert progress["kbh-2030"]["baseline_value"] == 1000.0
    assert progress["kbh-2030"]["latest_value"] == 520.0
    assert progress["kbh-2050"]["target_value"] == 0.0
    # One municipality is not the region: the regional year is incomplete.
    assert progress["region-co2-2030"]["status"] == "no_data"
    assert progress["region-co2-2030"]["coverage"] == {
        "year": 2023,
        "reported": 1,
        "expected": 29,
    }


def test_the_national_line_is_drawn_on_the_regional_series() -> None:
    fold = EventFold()
    for code in municipality_codes():
        for year, tonnes in {1990: 100.0, 2023: 25.0}.items():
            fold.add("co2_account", co2_event(code, year, "energy", tonnes))
    progress = _progress(fold)
    assert progress["dk-climate-law-2030"]["baseline_value"] == 2900.0
    assert progress["dk-climate-law-2030"]["status"] == "achieved"
    assert progress["region-co2-2030"]["latest_value"] == 725.0


def test_a_revision_is_a_new_version_and_the_newest_counts() -> None:
    fold = EventFold()
    fold.add("target", target_event("kbh-2030", scope="101", reduction_pct=70))
    fold.add(
        "target", target_event("kbh-2030", version=2, scope="101", reduction_pct=80)
    )
    facts = fold.facts()
    assert sorted(t.version for t in facts.targets if t.target_id == "kbh-2030") == [
        1,
        2,
    ]
    assert _progress(fold)["kbh-2030"]["version"] == 2


def test_a_restated_year_counts_at_its_newest_vintage() -> None:
    fold = EventFold()
    fold.add("co2_account", co2_event("101", 2022, "energy", 500.0, "2023-05-01"))
    fold.add("co2_account", co2_event("101", 2022, "energy", 400.0, "2024-05-01"))
    fold.add("co2_account", co2_event("101", 2022, "energy", 999.0, "2023-01-15"))
    series = _emissions(fold)["101"]
    assert series[2022].value == 400.0


def test_clashes_are_rejected_like_the_service_does_and_duplicates_count_once() -> None:
    fold = EventFold()
    event = co2_event("101", 2022, "energy", 500.0)
    fold.add("co2_account", event)
    fold.add("co2_account", event)  # the same fact again: once
    assert _emissions(fold)["101"][2022].value == 500.0
    with pytest.raises(EventValidationError) as reused:
        fold.add("co2_account", {**event, "tonnes_co2e": 1.0})
    assert reused.value.field == "event_id"
    taken = target_event("region-co2-2030")  # version 1 is the seed's
    with pytest.raises(EventValidationError) as clash:
        fold.add("target", taken)
    assert clash.value.field == "version"


def test_jsonl_lines_name_their_family_by_schema_and_bad_ones_say_why() -> None:
    lines = [
        json.dumps(co2_event("101", 2022, "energy", 1.0)),
        "",
        json.dumps(target_event("kbh-2030", scope="101")),
        "{not json",
        json.dumps({"event_id": "no-schema"}),
        json.dumps({**co2_event("101", 2022, "energy", 1.0), "tonnes_co2e": -5}),
        "[1, 2]",
    ]
    read = list(read_jsonl(lines))
    assert [(r.number, r.kind) for r in read[:2]] == [(1, "co2_account"), (3, "target")]
    issues = {r.number: r.error.issues[0] for r in read[2:] if r.error}
    assert issues[4].field == "$"
    assert "not valid JSON" in issues[4].reason
    assert issues[5].field == "schema"
    assert issues[6].field == "tonnes_co2e"
    assert issues[7].field == "$"
