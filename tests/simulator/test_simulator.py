"""The simulator: seeded, valid, labelled synthetic, with the rhythms of real data."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klimapuls.cli.simulate import TokenBucket
from klimapuls.core.errors import EventValidationError
from klimapuls.core.reference import municipality_codes, seed_target_events
from klimapuls.core.validation import EVENT_KINDS, decode_event, validate_event
from klimapuls.simulator import (
    DEFAULT_START,
    SIMULATOR_PRODUCER,
    SimulatedEvent,
    counting_sites,
    demo_events,
    fleet_events,
    ids_by_kind,
    initiative_events,
    kind_counts,
    malformed_events,
    mobility_events,
    movia_fleet,
    simulate,
)

LOCAL = ZoneInfo("Europe/Copenhagen")
START = DEFAULT_START  # a Monday


def _bodies(events: list[SimulatedEvent]) -> list[dict]:
    return [e.body for e in events if isinstance(e.body, dict)]


@pytest.fixture(scope="module")
def week() -> list[dict]:
    """A week of hourly counts, Monday to Sunday."""
    return _bodies(list(mobility_events(2045, START, hours=24 * 7)))


@pytest.fixture(scope="module")
def fleet() -> list[dict]:
    return _bodies(fleet_events(2045, START))


def _movia_on(fleet: list[dict], day: str) -> Counter[str]:
    """Movia's buses on `day`: the newest report of every garage, summed."""
    newest: dict[str, dict] = {}
    for event in sorted(fleet, key=lambda e: e["reported_at"]):
        if event["operator"] == "movia" and event["date"] == day:
            newest[event["garage"]] = event["buses"]
    total: Counter[str] = Counter()
    for buses in newest.values():
        total.update(buses)
    return total


def test_the_same_seed_gives_the_same_stream_and_another_seed_another():
    first = list(islice(simulate(7, START), 3000))
    again = list(islice(simulate(7, START), 3000))
    other = list(islice(simulate(8, START), 3000))
    assert first == again
    assert first != other


def test_every_valid_event_validates_against_its_schema():
    events = [
        *islice(simulate(2045, START), 12_000),
        *fleet_events(2045, START),
        *initiative_events(2045, START),
    ]
    for event in events:
        if not event.malformed:
            validate_event(event.kind, event.body)
    assert set(kind_counts(events)) == {*EVENT_KINDS, "malformed"}


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10**9))
def test_any_seed_gives_valid_events(seed: int):
    for event in islice(simulate(seed, date(2025, 3, 29)), 1500):
        if not event.malformed:
            validate_event(event.kind, event.body)


def test_every_event_is_labelled_synthetic():
    for event in islice(simulate(2045, START), 5000):
        if event.malformed or event.kind == "target":
            continue  # targets are the seed targets, real decisions
        body = event.body
        if event.kind == "co2_account":
            assert "synthetic" in body["source"]  # the CO2 demo's events
        else:
            assert body["producer"] == SIMULATOR_PRODUCER
            assert "synthetic" in SIMULATOR_PRODUCER


def test_malformed_events_fail_validation_naming_the_defective_field():
    defects = Counter()
    for event in islice(malformed_events(2045, START), 24):
        assert event.malformed and event.defect
        with pytest.raises(EventValidationError) as rejected:
            decode_event(event.kind, event.body)
        assert event.defect in {issue.field for issue in rejected.value.issues}
        defects[event.defect] += 1
    assert {"municipality_code", "count", "$", "date", "status"} <= set(defects)


def test_malformed_events_are_a_small_share_of_the_stream():
    counts = kind_counts(islice(simulate(2045, START), 20_000))
    assert 0 < counts["malformed"] / 20_000 < 0.02


def test_every_kind_shows_up_within_the_first_hundred_events():
    assert set(kind_counts(islice(simulate(2045, START), 100))) == {
        *EVENT_KINDS,
        "malformed",
    }


def test_event_ids_are_unique_so_a_rerun_stores_each_fact_once():
    ids = ids_by_kind(islice(simulate(2045, START), 30_000))
    for kind, values in ids.items():
        assert len(values) == len(set(values)), kind


def test_counts_stay_valid_and_distinct_across_the_autumn_clock_change():
    events = list(mobility_events(2045, date(2025, 10, 25), hours=72))
    for event in events:
        validate_event(event.kind, event.body)
    assert len({e.event_id for e in events}) == len(events)


def test_counting_sites_cover_every_municipality_and_every_mode():
    sites = counting_sites()
    assert {s.municipality_code for s in sites} == set(municipality_codes())
    assert {s.mode for s in sites} == {"car", "bike", "walk", "bus", "train", "metro"}


def test_weekday_counts_peak_in_the_rush_hours_not_at_night(week: list[dict]):
    by_hour: Counter[int] = Counter()
    for event in week:
        moment = datetime.fromisoformat(event["interval_start"]).astimezone(LOCAL)
        if moment.weekday() < 5:
            by_hour[moment.hour] += event["count"]
    night = by_hour[3]
    assert by_hour[7] > 10 * night  # morning peak
    assert by_hour[16] > 10 * night  # evening peak
    assert by_hour[7] > by_hour[11] and by_hour[16] > by_hour[11]


def test_morning_traffic_goes_in_and_evening_traffic_goes_out(week: list[dict]):
    flows: Counter[tuple[int, str]] = Counter()
    for event in week:
        moment = datetime.fromisoformat(event["interval_start"]).astimezone(LOCAL)
        if moment.weekday() < 5 and event["direction"] in ("in", "out"):
            flows[(moment.hour, event["direction"])] += event["count"]
    assert flows[(7, "in")] > flows[(7, "out")]
    assert flows[(17, "out")] > flows[(17, "in")]


def test_weekends_count_fewer_trips_than_weekdays(week: list[dict]):
    by_day: Counter[date] = Counter()
    for event in week:
        moment = datetime.fromisoformat(event["interval_start"]).astimezone(LOCAL)
        by_day[moment.date()] += event["count"]
    weekdays = [v for d, v in by_day.items() if d.weekday() < 5]
    weekend = [v for d, v in by_day.items() if d.weekday() >= 5]
    assert len(weekdays) == 5 and len(weekend) == 2
    assert max(weekend) < 0.85 * min(weekdays)


def test_the_regional_mode_mix_is_near_the_2021_22_split(week: list[dict]):
    by_group: Counter[str] = Counter()
    for event in week:
        mode = event["mode"]
        group = mode if mode in ("car", "bike", "walk") else "public"
        by_group[group] += event["count"]
    total = sum(by_group.values())
    split = {"car": 0.44, "bike": 0.21, "walk": 0.24, "public": 0.11}
    for group, share in split.items():
        assert by_group[group] / total == pytest.approx(share, abs=0.03), group


def test_some_counts_are_restated_later_with_a_higher_revision(week: list[dict]):
    originals = {
        (e["site_id"], e["direction"], e["interval_start"]): e
        for e in week
        if e["revision"] == 0
    }
    restated = [e for e in week if e["revision"] == 1]
    assert restated
    for event in restated:
        key = (event["site_id"], event["direction"], event["interval_start"])
        original = originals[key]
        assert event["reported_at"] > original["reported_at"]
        assert event["event_id"] != original["event_id"]


def test_movia_fleet_matches_the_public_figures(fleet: list[dict]):
    end_2022 = _movia_on(fleet, "2022-12-31")
    buses = sum(end_2022.values())
    fossil_free = buses - end_2022["diesel"] - end_2022["hybrid"]
    zero = end_2022["battery_electric"] + end_2022["hydrogen"]
    assert fossil_free / buses == pytest.approx(0.39, abs=0.01)
    assert zero / buses == pytest.approx(0.25, abs=0.01)

    april_2025 = _movia_on(fleet, "2025-04-30")
    buses = sum(april_2025.values())
    assert april_2025["battery_electric"] == pytest.approx(593, abs=5)
    assert april_2025["battery_electric"] / buses == pytest.approx(0.53, abs=0.01)
    assert buses == pytest.approx(1120, abs=30)


def test_movia_fleet_electrifies_steadily_and_is_fossil_free_by_2030():
    days = [date(y, 12, 31) for y in range(2018, 2030)]
    electric = [movia_fleet(d)["battery_electric"] for d in days]
    assert electric == sorted(electric)
    end = movia_fleet(date(2029, 12, 31))
    assert end["fossil_free"] == end["buses"]


def test_the_first_zero_emission_garages_electrify_first(fleet: list[dict]):
    shares = defaultdict(float)
    for event in fleet:
        if event["date"] == "2022-12-31" and event["operator"] == "movia":
            buses = event["buses"]
            shares[event["garage"]] = buses.get("battery_electric", 0) / sum(
                buses.values()
            )
    for early in ("Ballerup", "Frederiksberg", "Roskilde", "Stenløse"):
        assert shares[early] > shares["Nykøbing Falster"]


def test_a_restated_fleet_snapshot_is_reported_later(fleet: list[dict]):
    reports = defaultdict(list)
    for event in fleet:
        reports[(event["operator"], event["garage"], event["date"])].append(event)
    restated = [r for r in reports.values() if len(r) > 1]
    assert restated
    for first, second in (sorted(r, key=lambda e: e["event_id"]) for r in restated):
        assert second["reported_at"] > first["reported_at"]


def test_initiative_rounds_hand_southern_ring_4_over_to_ishoej():
    reports = [
        e
        for e in _bodies(initiative_events(2045, START))
        if e["initiative_id"] == "udvidelse-af-motorring-4-ved-koebenhavn-sydlig"
    ]
    tovholdere = {e["round"]: e["tovholdere"] for e in reports}
    assert tovholdere["2023-10"] == ["Høje-Taastrup"]
    assert tovholdere["2024-10"] == ["Ishøj"]


def test_initiative_reports_cover_several_rounds_and_leave_some_missing():
    reports = _bodies(initiative_events(2045, START))
    rounds = Counter(e["round"] for e in reports)
    assert {"2022-10", "2023-10", "2024-10", "2025-10"} <= set(rounds)
    # Empty cells of the status table are missing reports: never sent.
    assert rounds["2022-10"] < 56


def test_demo_events_are_finite_and_list_what_must_be_processed():
    events = demo_events(2045, START, days=1)
    ids = ids_by_kind(events)
    assert set(ids) == {*EVENT_KINDS, "dead_letter"}
    assert len(ids["dead_letter"]) == 12 == len(set(ids["dead_letter"]))
    assert ids["target"] == [e["event_id"] for e in seed_target_events()]
    hourly = _bodies(list(mobility_events(2045, START, hours=24)))
    assert sorted(ids["mobility_count"]) == sorted(
        f"{e['event_id']}@{START.isoformat()}" for e in hourly
    )


def test_token_bucket_paces_to_the_rate():
    bucket = TokenBucket(rate=100, capacity=5, now=0.0)
    sent = bucket.take(0.0, 1000)
    t = 0.0
    while t < 2.0:
        t += 0.013
        sent += bucket.take(t, 1000)
    assert sent == pytest.approx(200, abs=6)
    assert bucket.take(t + 10, 1000) == 5  # bursts are capped


def test_an_id_means_the_same_fact_whatever_the_start() -> None:
    """Runs from two start dates never send one id with two contents."""
    first = demo_events(2045, date(2026, 6, 1), days=1)
    later = demo_events(2045, date(2027, 6, 1), days=1)
    bodies = {e.body["event_id"]: e.body for e in first if isinstance(e.body, dict)}
    shared = [
        e.body
        for e in later
        if isinstance(e.body, dict) and e.body["event_id"] in bodies
    ]
    assert shared  # CO2 accounts and targets are the same facts in both runs
    for body in shared:
        same = bodies[body["event_id"]]
        assert {k: v for k, v in body.items() if k != "reported_at"} == {
            k: v for k, v in same.items() if k != "reported_at"
        }
