"""The target math on hand-computed cases: one per status, stale, shares.

The emission cases share one target: baseline 1990 = 1,000 t, -50 % by 2030,
so E_T = 500 t and the path is P(t) = 1,000 - 12.5 * (t - 1990):
P(2022) = 600, P(2023) = 587.5.
"""

from __future__ import annotations

from datetime import date

import pytest

from klimapuls.core.accounts import YearValue
from klimapuls.core.model import Coverage, Target
from klimapuls.core.targets import evaluate, forecast, path_value

AS_OF = date(2024, 6, 1)


def emission_target(**fields: object) -> Target:
    values: dict[str, object] = {
        "target_id": "t-2030",
        "version": 1,
        "scope": "101",
        "indicator": "co2e_total",
        "baseline_year": 1990,
        "target_year": 2030,
        "reduction_pct": 50,
        "unit": "t CO2e",
    }
    values.update(fields)
    return Target(**values)  # type: ignore[arg-type]


def share_target(**fields: object) -> Target:
    values: dict[str, object] = {
        "target_id": "share-2030",
        "version": 1,
        "scope": "movia",
        "indicator": "fossil_free_bus_share",
        "target_year": 2030,
        "target_value": 100,
        "unit": "%",
    }
    values.update(fields)
    return Target(**values)  # type: ignore[arg-type]


def series(
    points: dict[int, float], reported: int = 1, expected: int = 1
) -> dict[int, YearValue]:
    return {
        year: YearValue(year, value, Coverage(year, reported, expected))
        for year, value in points.items()
    }


def test_path_and_forecast_helpers() -> None:
    assert path_value(1990, 1000, 2030, 500, 2023) == pytest.approx(587.5)
    # Only the last five points count: 1990 does not pull the line down.
    points = [
        (1990, 1000.0),
        (2019, 600.0),
        (2020, 580.0),
        (2021, 560.0),
        (2022, 540.0),
        (2023, 520.0),
    ]
    assert forecast(points, 2030) == pytest.approx(380.0)
    assert forecast(points[:2], 2030) is None


def test_below_the_path_with_a_good_trend_is_on_track() -> None:
    s = series({1990: 1000, 2019: 600, 2020: 580, 2021: 560, 2022: 540, 2023: 520})
    p = evaluate(emission_target(), s, AS_OF)
    assert p.status == "on_track"
    assert p.baseline_value == 1000
    assert p.target_value == pytest.approx(500)
    assert p.latest_year == 2023
    assert p.latest_value == 520
    assert p.reduction_achieved_pct == pytest.approx(48.0)
    assert p.path_value == pytest.approx(587.5)
    assert p.gap_to_path == pytest.approx(-67.5)
    # Slope -20 t a year through 2019-2023: 560 - 20 * 9 = 380 in 2030.
    assert p.forecast_value == pytest.approx(380.0)
    assert p.required_annual_reduction == pytest.approx(20 / 7)
    assert not p.stale


def test_at_or_below_the_target_value_is_achieved() -> None:
    s = series({1990: 1000, 2021: 520, 2022: 500})
    p = evaluate(emission_target(), s, AS_OF)
    assert p.status == "achieved"
    assert p.gap_to_path == pytest.approx(-100.0)


def test_above_the_path_with_a_rising_trend_is_off_track() -> None:
    s = series({1990: 1000, 2019: 680, 2020: 690, 2021: 700, 2022: 710, 2023: 720})
    p = evaluate(emission_target(), s, AS_OF)
    assert p.status == "off_track"
    assert p.gap_to_path == pytest.approx(132.5)
    assert p.forecast_value == pytest.approx(790.0)


def test_above_the_path_but_a_trend_that_gets_there_is_at_risk() -> None:
    s = series({1990: 1000, 2019: 700, 2020: 660, 2021: 620, 2022: 600, 2023: 600})
    p = evaluate(emission_target(), s, AS_OF)
    # Mean 636, slope -26: 636 - 26 * 9 = 402 <= 500, yet 600 > 587.5.
    assert p.forecast_value == pytest.approx(402.0)
    assert p.status == "at_risk"


def test_below_the_path_but_a_trend_that_misses_is_at_risk() -> None:
    s = series({1990: 1000, 2019: 560, 2020: 565, 2021: 570, 2022: 575, 2023: 580})
    p = evaluate(emission_target(), s, AS_OF)
    assert p.forecast_value == pytest.approx(615.0)
    assert p.status == "at_risk"


def test_fewer_than_three_years_give_no_forecast_and_the_path_decides() -> None:
    p = evaluate(emission_target(), series({1990: 1000, 2023: 520}), AS_OF)
    assert p.forecast_value is None
    assert p.status == "on_track"


def test_a_missing_baseline_year_or_no_figures_is_no_data() -> None:
    no_baseline = evaluate(emission_target(), series({2022: 500, 2023: 480}), AS_OF)
    assert no_baseline.status == "no_data"
    assert no_baseline.baseline_value is None
    assert no_baseline.latest_value == 480
    nothing = evaluate(emission_target(), {}, AS_OF)
    assert nothing.status == "no_data"
    assert nothing.latest_year is None
    assert not nothing.stale


def test_a_given_baseline_value_replaces_the_measured_one() -> None:
    s = series({2021: 560, 2022: 540, 2023: 520})
    p = evaluate(emission_target(baseline_value=1000.0), s, AS_OF)
    assert p.baseline_value == 1000.0
    assert p.status == "on_track"


def test_net_zero_forecasts_are_never_below_zero() -> None:
    s = series({1990: 1000, 2021: 300, 2022: 200, 2023: 100})
    p = evaluate(emission_target(reduction_pct=100), s, AS_OF)
    assert p.target_value == 0
    assert p.forecast_value == 0.0
    assert p.status == "on_track"


def test_stale_when_the_newest_year_is_more_than_two_years_old() -> None:
    s = series({1990: 1000, 2019: 600, 2020: 580, 2021: 560, 2022: 540, 2023: 520})
    assert not evaluate(emission_target(), s, date(2025, 12, 31)).stale
    late = evaluate(emission_target(), s, date(2026, 1, 1))
    assert late.stale
    assert late.status == "on_track"  # stale is a flag beside the status


def test_years_after_the_as_of_date_are_not_used() -> None:
    s = series({1990: 1000, 2022: 540, 2023: 520, 2024: 900})
    p = evaluate(emission_target(), s, date(2023, 12, 31))
    assert p.latest_year == 2023
    assert p.coverage.year == 2023


def test_incomplete_years_are_shown_in_coverage_but_not_counted() -> None:
    s = series({1990: 29_000, 2021: 16_000, 2022: 15_000}, reported=29, expected=29)
    s[2023] = YearValue(2023, 9_000, Coverage(2023, 17, 29))
    p = evaluate(emission_target(), s, AS_OF)
    assert p.latest_year == 2022
    assert p.coverage == Coverage(2023, 17, 29)
    assert [c.reported for c in p.coverage_by_year] == [29, 29, 29, 17]
    assert p.counted_years == (1990, 2021, 2022)


def test_a_share_rising_toward_the_goal_is_on_track() -> None:
    # P(t) = 40 + 6 * (t - 2020): P(2022) = 52; slope 7 a year reaches 100.
    s = series({2020: 40, 2021: 47, 2022: 54})
    p = evaluate(share_target(baseline_year=2020), s, AS_OF)
    assert p.path_value == pytest.approx(52.0)
    assert p.gap_to_path == pytest.approx(2.0)
    assert p.forecast_value == 100.0  # 110 capped at 100 %
    assert p.reduction_achieved_pct == pytest.approx(-35.0)  # rose 35 %
    assert p.required_annual_reduction == pytest.approx(-5.75)  # +5.75 pp a year
    assert p.status == "on_track"


def test_a_share_below_its_path_with_a_slow_trend_is_off_track() -> None:
    s = series({2020: 40, 2021: 45, 2022: 50})
    p = evaluate(share_target(baseline_year=2020), s, AS_OF)
    assert p.forecast_value == pytest.approx(90.0)
    assert p.status == "off_track"


def test_a_share_without_baseline_starts_at_its_first_year_and_can_be_achieved() -> (
    None
):
    p = evaluate(share_target(), series({2021: 60, 2022: 80, 2023: 100}), AS_OF)
    assert p.baseline_year == 2021
    assert p.baseline_value == 60
    assert p.status == "achieved"


def test_a_share_already_above_its_goal_is_achieved_not_misread_as_falling() -> None:
    target = share_target(indicator="drinking_water_protected_share", target_value=85)
    p = evaluate(target, series({2022: 90, 2023: 91}), AS_OF)
    assert p.status == "achieved"


def test_an_increase_target_counts_from_its_first_year() -> None:
    target = share_target(
        indicator="bike_trips", target_value=None, increase_pct=20, unit="trips"
    )
    p = evaluate(target, series({2020: 1000, 2021: 1020, 2022: 1040}), AS_OF)
    assert p.target_value == pytest.approx(1200)
    # P(2022) = 1000 + 200 * 2 / 10 = 1040: on the path; the trend hits 1200.
    assert p.path_value == pytest.approx(1040)
    assert p.forecast_value == pytest.approx(1200)
    assert p.status == "on_track"


def test_sustainable_trips_measured_from_the_given_2022_split() -> None:
    target = share_target(
        indicator="sustainable_trip_share",
        scope="1084",
        baseline_year=2022,
        baseline_value=56.0,
        target_value=66.7,
        target_year=2035,
    )
    p = evaluate(target, series({2022: 56, 2023: 57, 2024: 57.5}), date(2025, 6, 1))
    # P(2024) = 56 + 10.7 * 2 / 13 = 57.646: 57.5 is below the rising path,
    # and the trend (+0.75 a year) gives 65.75 in 2035, short of 66.7.
    assert p.path_value == pytest.approx(56 + 10.7 * 2 / 13)
    assert p.forecast_value == pytest.approx(56.8333 + 0.75 * 12, abs=1e-3)
    assert p.status == "off_track"


@pytest.mark.parametrize(
    ("points", "status"),
    [
        ({2022: 25, 2023: 30, 2024: 40}, "on_track"),
        ({2022: 40, 2023: 35, 2024: 30}, "at_risk"),
        ({2023: 30, 2024: 40}, "at_risk"),  # too few years for a trend
        ({2023: 90, 2024: 100}, "achieved"),
        ({}, "no_data"),
    ],
)
def test_a_target_without_deadline_has_no_path_and_follows_the_trend(
    points: dict[int, float], status: str
) -> None:
    target = share_target(indicator="zero_emission_bus_share", target_year=None)
    p = evaluate(target, series(points), date(2025, 6, 1))
    assert p.status == status
    assert p.target_year is None
    assert p.path_value is None
    assert p.gap_to_path is None
    assert p.forecast_value is None
    assert p.required_annual_reduction is None


def test_the_json_shape_has_every_field_of_the_issue() -> None:
    s = series({1990: 1000, 2022: 540, 2023: 520})
    shape = evaluate(emission_target(), s, AS_OF).as_json()
    for key in (
        "target_id",
        "scope",
        "version",
        "baseline_year",
        "baseline_value",
        "target_year",
        "target_value",
        "latest_year",
        "latest_value",
        "reduction_achieved_pct",
        "path_value",
        "gap_to_path",
        "forecast_value",
        "required_annual_reduction",
        "status",
        "stale",
        "coverage",
    ):
        assert key in shape
    assert shape["coverage"] == {"year": 2023, "reported": 1, "expected": 1}


def test_a_net_zero_path_followed_exactly_is_on_track_despite_float_noise() -> None:
    # Found by hypothesis: the fitted forecast of a goal of 0 t lands ~3e-9 t
    # above zero; a comparison at the series' scale must not call it a miss.
    baseline = 8_551_955.75
    target = Target(
        target_id="net-zero",
        version=1,
        scope="1084",
        indicator="co2e_total",
        target_year=2023,
        baseline_year=1990,
        reduction_pct=100.0,
    )
    points = {
        year: YearValue(
            year, path_value(1990, baseline, 2023, 0.0, year), Coverage(year, 1, 1)
        )
        for year in range(1990, 1997)
    }
    progress = evaluate(target, points, date(1997, 6, 1))
    assert progress.forecast_value == pytest.approx(0.0, abs=1e-6)
    assert progress.status == "on_track"
