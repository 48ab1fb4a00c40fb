"""Fleet shares, restatements and target progress: pure, no servers."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from klimapuls.core.errors import EventValidationError
from klimapuls.core.fleet import (
    FOSSIL_FREE_SHARE,
    PROPULSIONS,
    ZERO_EMISSION_SHARE,
    BusCounts,
    FleetSnapshot,
    current_snapshots,
    fleet_shares,
    share_series,
    yearly_shares,
)
from klimapuls.core.model import REGION_CODE, Target
from klimapuls.core.targets import evaluate
from klimapuls.core.validation import validate_event
from tests.fleet.factories import fleet_event

# Movia at the end of 2022 [public]: 39 % fossil-free, 25 % electric or hydrogen.
MOVIA_END_2022 = {
    "diesel": 571,
    "hybrid": 100,
    "hvo": 100,
    "biogas": 54,
    "battery_electric": 250,
    "hydrogen": 25,
}
# April 2025 [public]: 593 electric buses, 53 % of the fleet (1,119 buses).
MOVIA_APRIL_2025 = {"diesel": 300, "hybrid": 26, "hvo": 200, "battery_electric": 593}

MOVIA_FOSSIL_FREE_2030 = Target(
    target_id="movia-fossil-free-2030",
    version=1,
    scope="movia",
    indicator=FOSSIL_FREE_SHARE,
    target_year=2030,
    target_value=100.0,
    unit="%",
)


def _snapshot(
    operator: str, day: str, unit: str = "g1", **kwargs: object
) -> FleetSnapshot:
    return FleetSnapshot.from_event(fleet_event(operator, day, garage=unit, **kwargs))


def test_biofuel_buses_are_fossil_free_but_not_zero_emission() -> None:
    buses = BusCounts(hvo=3, biogas=1)
    assert buses.fossil_free_share == 100.0
    assert buses.zero_emission_share == 0.0


def test_electric_and_hydrogen_buses_are_both_fossil_free_and_zero_emission() -> None:
    buses = BusCounts(battery_electric=3, hydrogen=1)
    assert buses.fossil_free_share == buses.zero_emission_share == 100.0


def test_hybrid_buses_count_as_fossil() -> None:
    buses = BusCounts(hybrid=1, battery_electric=1)
    assert buses.fossil_free_share == 50.0
    assert buses.zero_emission_share == 50.0


def test_movias_public_figures_come_out_as_published() -> None:
    end_2022 = BusCounts.from_mapping(MOVIA_END_2022)
    assert end_2022.fossil_free_share == pytest.approx(39.0)
    assert end_2022.zero_emission_share == pytest.approx(25.0)
    april_2025 = BusCounts.from_mapping(MOVIA_APRIL_2025)
    assert april_2025.total == 1119
    assert round(april_2025.zero_emission_share or 0) == 53


def test_an_empty_fleet_has_no_share() -> None:
    assert BusCounts().fossil_free_share is None
    assert BusCounts(diesel=0).zero_emission_share is None


def test_counts_are_in_the_order_of_the_propulsions_and_of_the_fields() -> None:
    # Storage builds `BusCounts(*row)` from columns in `PROPULSIONS` order.
    assert tuple(f.name for f in fields(BusCounts)) == PROPULSIONS
    buses = BusCounts(*range(1, len(PROPULSIONS) + 1))
    assert buses.counts == tuple(buses.as_dict()[name] for name in PROPULSIONS)


@given(
    st.fixed_dictionaries({p: st.integers(0, 2000) for p in PROPULSIONS}),
    st.fixed_dictionaries({p: st.integers(0, 2000) for p in PROPULSIONS}),
)
def test_counts_add_and_subtract_by_propulsion(
    one: dict[str, int], other: dict[str, int]
) -> None:
    a, b = BusCounts.from_mapping(one), BusCounts.from_mapping(other)
    assert (a + b).as_dict() == {p: one[p] + other[p] for p in PROPULSIONS}
    assert (a - b).as_dict() == {p: one[p] - other[p] for p in PROPULSIONS}


@given(st.fixed_dictionaries({p: st.integers(0, 2000) for p in PROPULSIONS}))
def test_zero_emission_never_exceeds_fossil_free(counts: dict[str, int]) -> None:
    buses = BusCounts.from_mapping(counts)
    if buses.total == 0:
        assert buses.fossil_free_share is None
        return
    assert 0.0 <= (buses.zero_emission_share or 0) <= (buses.fossil_free_share or 0)
    assert (buses.fossil_free_share or 0) <= 100.0


def test_a_later_report_restates_the_snapshot_and_an_older_one_does_not_undo_it() -> (
    None
):
    first = _snapshot(
        "movia", "2024-06-30", diesel=10, reported_at="2024-07-01T08:00:00+00:00"
    )
    restated = _snapshot(
        "movia",
        "2024-06-30",
        diesel=4,
        battery_electric=6,
        reported_at="2024-09-01T08:00:00+00:00",
    )
    late_old = _snapshot(
        "movia", "2024-06-30", diesel=99, reported_at="2024-06-30T20:00:00+00:00"
    )
    current = current_snapshots([first, restated, late_old])
    assert list(current.values()) == [restated]
    (share,) = fleet_shares([late_old, restated, first])["movia"]
    assert share.buses.total == 10
    assert share.zero_emission_share == 60.0


def test_the_fleet_on_a_date_sums_the_newest_snapshot_of_every_garage() -> None:
    shares = fleet_shares(
        [
            _snapshot("movia", "2024-03-31", "ballerup", diesel=10),
            _snapshot("movia", "2024-03-31", "roskilde", diesel=5, hvo=5),
            # Only Ballerup reports in June: Roskilde keeps its March counts.
            _snapshot("movia", "2024-06-30", "ballerup", battery_electric=10),
        ]
    )["movia"]
    assert [(s.date, s.buses.total, s.units) for s in shares] == [
        (date(2024, 3, 31), 20, 2),
        (date(2024, 6, 30), 20, 2),
    ]
    assert shares[-1].fossil_free_share == 75.0
    assert shares[-1].zero_emission_share == 50.0


def test_the_region_sums_every_operators_units_in_the_region() -> None:
    shares = fleet_shares(
        [
            _snapshot(
                "movia",
                "2024-12-31",
                "Ballerup",
                municipality_code="151",
                diesel=6,
                battery_electric=2,
            ),
            # Movia also serves Region Sjælland: a garage without a
            # municipality code counts for Movia, not for the region.
            _snapshot("movia", "2024-12-31", "Køge", diesel=90),
            _snapshot("region-hovedstaden", "2024-12-31", hydrogen=2),
            _snapshot("400", "2024-12-31", "Rønne", hvo=5, battery_electric=5),
            _snapshot(
                "arriva", "2024-12-31", "Herlev", municipality_code="163", biogas=5
            ),
        ]
    )
    (region,) = shares[REGION_CODE]
    assert region.buses.total == 8 + 2 + 10 + 5
    assert region.zero_emission_share == pytest.approx(100 * 9 / 25)
    assert region.fossil_free_share == pytest.approx(100 * 19 / 25)
    assert shares["movia"][0].buses.total == 98
    assert shares["region-hovedstaden"][0].zero_emission_share == 100.0
    assert shares["400"][0].fossil_free_share == 100.0


def test_the_yearly_series_takes_the_newest_date_of_each_year() -> None:
    shares = fleet_shares(
        [
            _snapshot("movia", "2023-06-30", diesel=1),
            _snapshot("movia", "2023-12-31", hvo=1, diesel=1),
            _snapshot("movia", "2024-03-31", hvo=1),
        ]
    )
    series = yearly_shares(shares["movia"], FOSSIL_FREE_SHARE)
    assert {y: p.value for y, p in series.items()} == {2023: 50.0, 2024: 100.0}
    assert all(p.counted for p in series.values())


def test_progress_toward_movia_fossil_free_2030_uses_the_target_math() -> None:
    shares = fleet_shares(
        [
            _snapshot("movia", "2022-12-31", **MOVIA_END_2022),
            _snapshot("movia", "2025-04-30", **MOVIA_APRIL_2025),
        ]
    )
    series = share_series(shares, "movia", FOSSIL_FREE_SHARE)
    progress = evaluate(MOVIA_FOSSIL_FREE_2030, series, date(2025, 5, 1))
    # No baseline year given: the path starts at the first year, 39 % in 2022,
    # and reaches 100 % in 2030: 39 + 61 * 3/8 = 61.875 % in 2025.
    assert progress.baseline_year == 2022
    assert progress.baseline_value == pytest.approx(39.0)
    assert progress.latest_year == 2025
    assert progress.latest_value == pytest.approx(100 * 793 / 1119)
    assert progress.path_value == pytest.approx(61.875)
    assert progress.status == "on_track"
    # Zero-emission is a different measure: 25 % then 53 %.
    zero = share_series(shares, "movia", ZERO_EMISSION_SHARE)
    assert round(zero[2022].value) == 25 and round(zero[2025].value) == 53


def test_a_target_of_a_scope_without_buses_has_no_data() -> None:
    target = Target(
        target_id="dk-buses",
        version=1,
        scope="DK",
        indicator=ZERO_EMISSION_SHARE,
        target_year=2030,
        target_value=100.0,
        unit="%",
    )
    shares = fleet_shares([_snapshot("movia", "2024-12-31", diesel=1)])
    progress = evaluate(
        target, share_series(shares, "DK", ZERO_EMISSION_SHARE), date(2025, 1, 1)
    )
    assert progress.status == "no_data"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"garage": None}, "contract", "give at least one of contract, garage"),
        ({"garage": " "}, "contract", "give at least one of contract, garage"),
        ({"date": "2025-04-03"}, "date", "cannot be reported on 2025-04-02"),
        ({"operator": "999"}, "operator", "not an allowed value"),
        ({"operator": "Arriva A/S"}, "operator", "does not match"),
        ({"buses": {"diesel": -1}}, "buses.diesel", "minimum"),
        ({"buses": {"trolley": 1}}, "buses.trolley", "unknown field"),
    ],
)
def test_a_bad_fleet_event_names_the_field_and_the_reason(
    change: dict[str, object], field: str, reason: str
) -> None:
    event = {
        **fleet_event(
            "movia",
            "2025-04-01",
            garage="Ballerup",
            reported_at="2025-04-02T08:00:00+02:00",
            diesel=1,
        ),
        **change,
    }
    with pytest.raises(EventValidationError) as raised:
        validate_event("fleet_status", event)
    assert raised.value.field == field
    assert reason in str(raised.value)


def test_an_event_without_contract_and_garage_is_rejected_by_the_schema() -> None:
    event = fleet_event("movia", "2025-04-01", garage="x", diesel=1)
    del event["garage"]
    with pytest.raises(EventValidationError) as raised:
        validate_event("fleet_status", event)
    assert raised.value.field == "contract"
    assert "give at least one of contract, garage" in str(raised.value)
