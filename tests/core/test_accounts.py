"""Restatements and coverage: how account figures become E(t)."""

from __future__ import annotations

from klimapuls.core.accounts import (
    current_figures,
    emission_series,
    measured_scope,
    municipality_totals,
)
from klimapuls.core.model import Co2Account
from klimapuls.core.reference import municipality_codes
from tests.helpers import co2_event


def _accounts(*events: dict[str, object]) -> list[Co2Account]:
    return [Co2Account.from_event(e) for e in events]


def test_the_newest_vintage_restates_a_sector_year() -> None:
    figures = current_figures(
        _accounts(
            co2_event("101", 2022, "energy", 400.0, "2024-05-01"),
            co2_event("101", 2022, "energy", 500.0, "2023-05-01"),
        )
    )
    assert figures == {("101", 2022, "energy"): 400.0}


def test_subsectors_of_the_newest_vintage_add_up_and_older_ones_drop_out() -> None:
    figures = current_figures(
        _accounts(
            co2_event("101", 2022, "transport", 100.0, "2023-05-01", subsector="road"),
            co2_event("101", 2022, "transport", 50.0, "2023-05-01", subsector="air"),
            co2_event("101", 2022, "transport", 90.0, "2024-05-01", subsector="road"),
        )
    )
    assert figures == {("101", 2022, "transport"): 90.0}


def test_the_same_figure_sent_twice_under_two_ids_counts_once() -> None:
    figures = current_figures(
        _accounts(
            co2_event(
                "101",
                2022,
                "energy",
                10.0,
                event_id="a",
                reported_at="2023-05-01T09:00:00+00:00",
            ),
            co2_event(
                "101",
                2022,
                "energy",
                12.0,
                event_id="b",
                reported_at="2023-05-02T09:00:00+00:00",
            ),
        )
    )
    assert figures == {("101", 2022, "energy"): 12.0}


def test_a_region_year_counts_only_when_all_29_reported() -> None:
    codes = municipality_codes()
    totals = {(code, 2022): 10.0 for code in codes}
    totals.update({(code, 2023): 5.0 for code in codes[:17]})
    series = emission_series(totals, "1084", codes)
    assert series[2022].value == 290.0 and series[2022].counted
    assert series[2023].coverage.reported == 17
    assert series[2023].coverage.expected == 29
    assert not series[2023].counted


def test_a_municipality_series_is_its_own_sum_over_sectors() -> None:
    figures = current_figures(
        _accounts(
            co2_event("147", 2021, "energy", 3.0),
            co2_event("147", 2021, "transport", 4.0),
            co2_event("101", 2021, "energy", 100.0),
        )
    )
    series = emission_series(municipality_totals(figures), "147", municipality_codes())
    assert {y: p.value for y, p in series.items()} == {2021: 7.0}


def test_the_national_target_is_measured_against_the_region() -> None:
    assert measured_scope("DK") == "1084"
    assert measured_scope("101") == "101"
