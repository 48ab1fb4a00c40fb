"""The pure mobility rules: restatements, modal split, yearly series, validation."""

from __future__ import annotations

from datetime import date

import pytest

from klimapuls.core.errors import EventValidationError
from klimapuls.core.mobility import (
    BIKE_TRIPS,
    SUSTAINABLE_MODES,
    SUSTAINABLE_TRIP_SHARE,
    MobilityCount,
    SiteYear,
    YearTrips,
    current_counts,
    mobility_series,
    modal_split,
    modal_splits,
    year_totals,
)
from klimapuls.core.model import REGION_CODE
from klimapuls.core.targets import evaluate
from klimapuls.core.validation import validate_event
from tests.mobility.factories import bike_trips_target, count_event

ALL_MONTHS = (1 << 12) - 1
START = "2024-05-01T06:00:00+00:00"


def _count(**fields: object) -> MobilityCount:
    event = count_event("site-1", "bike", START, 100)
    event.update(fields)
    return MobilityCount.from_event(validate_event("mobility_count", event))


def test_the_highest_revision_is_current_even_when_it_arrives_first() -> None:
    corrected = _count(
        event_id="b", revision=2, count=120, reported_at="2024-06-01T00:00:00+00:00"
    )
    late_original = _count(
        event_id="a", revision=1, count=999, reported_at="2025-03-01T00:00:00+00:00"
    )
    [current] = current_counts([corrected, late_original]).values()
    assert current.count == 120


def test_equal_revisions_are_ordered_by_reported_at() -> None:
    first = _count(event_id="a", count=100, reported_at="2024-06-01T00:00:00+00:00")
    later = _count(event_id="b", count=110, reported_at="2024-07-01T00:00:00+02:00")
    assert current_counts([later, first])[first.key].count == 110


def test_other_directions_and_intervals_are_separate_counts() -> None:
    counts = [
        _count(event_id="a"),
        _count(event_id="b", direction="out"),
        _count(event_id="c", interval_end="2024-05-01T06:15:00+00:00"),
    ]
    assert len(current_counts(counts)) == 3


def test_the_2021_22_regional_split_is_56_percent_sustainable() -> None:
    split = modal_split({"car": 44, "bike": 21, "walk": 24, "bus": 6, "train": 5})
    assert sum(v for m, v in split.items() if m in SUSTAINABLE_MODES) == (
        pytest.approx(56.0)
    )
    assert split["car"] == pytest.approx(44.0)
    assert modal_split({}) == {}


def _year(year: int, code: str, mode: str, trips: int, mask: int = ALL_MONTHS):
    return YearTrips(year, code, mode, trips, mask)


def test_the_region_adds_up_municipalities_and_a_municipality_keeps_its_own() -> None:
    rows = [
        _year(2023, "101", "car", 600),
        _year(2023, "101", "bike", 400),
        _year(2023, "147", "car", 200),
        _year(2023, "147", "metro", 800),
    ]
    splits = {(s.scope, s.year): s for s in modal_splits(rows, date(2024, 7, 1))}
    region = splits[(REGION_CODE, 2023)]
    assert region.total_trips == 2000
    assert region.sustainable_share == pytest.approx(60.0)
    assert region.shares["metro"] == pytest.approx(40.0)
    assert splits[("101", 2023)].sustainable_share == pytest.approx(40.0)
    assert region.counted
    # Counts of 2023 are quality-checked until the spring of 2024.
    assert not region.provisional


def test_a_year_counts_only_when_all_its_months_have_counts_and_ended() -> None:
    rows = [
        _year(2022, "101", "bike", 1200),
        _year(2023, "101", "bike", 1100, mask=ALL_MONTHS & ~(1 << 6)),  # no July
        _year(2024, "101", "bike", 900),  # all months, but the year is running
    ]
    splits = modal_splits(rows, date(2024, 11, 23))
    series = mobility_series(splits, REGION_CODE, BIKE_TRIPS)
    assert [(y, v.value, v.counted) for y, v in series.items()] == [
        (2022, 1200.0, True),
        (2023, 1100.0, False),
        (2024, 900.0, False),
    ]
    assert series[2024].coverage.reported == 10  # January to October ended
    assert [s.provisional for s in splits if s.scope == "101"] == [False, False, True]


def test_bike_trips_progress_uses_the_shared_target_math() -> None:
    from klimapuls.core.model import Target

    target = Target.from_event(validate_event("target", bike_trips_target()))
    # One site counted all year: bike trips compare like with like.
    sites = [
        SiteYear(y, "101", "s1", "bike", t, ALL_MONTHS)
        for y, t in ((2022, 1000), (2023, 1040), (2024, 1080))
    ]
    series = mobility_series(
        modal_splits(year_totals(sites), date(2025, 7, 1)),
        REGION_CODE,
        BIKE_TRIPS,
        sites,
    )
    progress = evaluate(target, series, date(2025, 7, 1))
    assert progress.target_value == pytest.approx(1200)
    assert progress.latest_value == 1080
    assert progress.status == "on_track"


def test_scopes_without_counts_have_an_empty_series() -> None:
    splits = modal_splits([_year(2023, "101", "car", 5)], date(2025, 1, 1))
    assert mobility_series(splits, "DK", SUSTAINABLE_TRIP_SHARE) == {}


def _issues(event: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(EventValidationError) as caught:
        validate_event("mobility_count", event)
    return [(i.field, i.reason) for i in caught.value.issues]


def test_interval_ends_are_compared_as_instants_not_as_text() -> None:
    # 06:30+01:00 is 05:30Z, half an hour after 07:00+02:00 (05:00Z).
    event = count_event("s", "bike", "2025-06-02T07:00:00+02:00", 5)
    event["interval_end"] = "2025-06-02T06:30:00+01:00"
    assert validate_event("mobility_count", event) == event
    event["interval_end"] = "2025-06-02T04:30:00Z"
    assert _issues(event) == [("interval_end", "must be after interval_start")]


def test_an_interval_longer_than_a_year_is_rejected() -> None:
    event = count_event("s", "walk", "2023-01-01T00:00:00+01:00", 5, hours=24 * 400)
    [(field, reason)] = _issues(event)
    assert field == "interval_end" and "366 days" in reason


def test_a_count_reported_before_its_interval_began_is_rejected() -> None:
    event = count_event(
        "s",
        "car",
        "2025-06-02T07:00:00+02:00",
        5,
        reported_at="2025-06-01T00:00:00+02:00",
    )
    [(field, reason)] = _issues(event)
    assert field == "interval_start" and "reported_at" in reason


def test_an_unknown_mode_names_the_field() -> None:
    [(field, reason)] = _issues(count_event("s", "tram", START, 5))
    assert field == "mode" and "'tram'" in reason


@pytest.mark.parametrize("delay_hours", [None, 1.5])
def test_a_count_built_from_an_event_is_the_one_its_fields_make(
    delay_hours: float | None,
) -> None:
    """`from_event` sets the fields past `__init__`: every one, as it would."""
    from dataclasses import fields

    event = count_event("site-1", "car", START, 100, delay_hours=delay_hours)
    count = MobilityCount.from_event(event)
    names = {f.name for f in fields(MobilityCount)}
    assert set(vars(count)) == names
    assert count == MobilityCount(**{name: getattr(count, name) for name in names})
    assert hash(count) == hash(MobilityCount(**vars(count)))
    with pytest.raises(AttributeError):
        count.count = 1  # type: ignore[misc]  # still frozen


def test_a_counts_identity_has_every_field_its_init_would_set() -> None:
    """`identity_of` sets the fields past `__init__` too: every one."""
    from dataclasses import fields

    from klimapuls.core.identity import Identity, content_digest, identity_of

    event = count_event("site-1", "car", START, 100, delay_hours=2.0)
    identity = identity_of("mobility_count", event)
    assert set(vars(identity)) == {f.name for f in fields(Identity)}
    assert identity == Identity(**vars(identity))
    assert identity.digest == content_digest(event)
    assert identity.slot == MobilityCount.from_event(event).key
    assert identity.also is not None  # 2.0 was once digested as written
    with pytest.raises(AttributeError):
        identity.digest = ""  # type: ignore[misc]  # still frozen
