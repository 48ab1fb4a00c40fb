"""Properties of the emission target math, checked on generated targets and series."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klimapuls.core.accounts import YearValue
from klimapuls.core.model import Coverage, Target
from klimapuls.core.targets import evaluate, path_value

# Best first: raising the latest figure may only move a status down this list.
RANK = {"achieved": 3, "on_track": 2, "at_risk": 1, "off_track": 0}
EXAMPLES = settings(max_examples=150, deadline=None)

baseline_years = st.integers(min_value=1990, max_value=2020)
spans = st.integers(min_value=1, max_value=40)
tonnes = st.floats(min_value=1.0, max_value=1e7, allow_nan=False, allow_infinity=False)
reductions = st.floats(min_value=5.0, max_value=100.0)


def _target(baseline_year: int, target_year: int, reduction_pct: float) -> Target:
    return Target(
        target_id="prop",
        version=1,
        scope="101",
        indicator="co2e_total",
        baseline_year=baseline_year,
        target_year=target_year,
        reduction_pct=reduction_pct,
        unit="t CO2e",
    )


def _series(points: dict[int, float]) -> dict[int, YearValue]:
    return {y: YearValue(y, v, Coverage(y, 1, 1)) for y, v in points.items()}


@EXAMPLES
@given(baseline_years, spans, tonnes, tonnes)
def test_the_path_passes_through_both_ends(
    baseline_year: int, span: int, baseline: float, goal: float
) -> None:
    target_year = baseline_year + span
    assert path_value(baseline_year, baseline, target_year, goal, baseline_year) == (
        pytest.approx(baseline)
    )
    assert path_value(baseline_year, baseline, target_year, goal, target_year) == (
        pytest.approx(goal)
    )


@EXAMPLES
@given(baseline_years, spans, tonnes, reductions, st.data())
def test_a_series_that_follows_the_path_is_on_track(
    baseline_year: int,
    span: int,
    baseline: float,
    reduction_pct: float,
    data: st.DataObject,
) -> None:
    target_year = baseline_year + span
    latest_year = data.draw(
        st.integers(min_value=baseline_year, max_value=target_year - 1), "latest"
    )
    goal = baseline * (1 - reduction_pct / 100)
    points = {
        year: path_value(baseline_year, baseline, target_year, goal, year)
        for year in range(baseline_year, latest_year + 1)
    }
    target = _target(baseline_year, target_year, reduction_pct)
    progress = evaluate(target, _series(points), date(latest_year + 1, 6, 1))
    assert progress.status == "on_track"
    assert progress.gap_to_path == pytest.approx(0.0, abs=1e-6 * baseline)


@EXAMPLES
@given(
    baseline_years,
    spans.filter(lambda s: s >= 2),
    tonnes,
    reductions,
    st.data(),
)
def test_raising_the_latest_value_never_improves_the_status(
    baseline_year: int,
    span: int,
    baseline: float,
    reduction_pct: float,
    data: st.DataObject,
) -> None:
    target_year = baseline_year + span
    # At least one year after the baseline, before the deadline.
    years = data.draw(
        st.lists(
            st.integers(min_value=baseline_year + 1, max_value=target_year - 1),
            min_size=1,
            max_size=8,
            unique=True,
        ),
        "years",
    )
    points = {baseline_year: baseline}
    for year in years:
        points[year] = data.draw(
            st.floats(min_value=0.0, max_value=2 * baseline), f"E({year})"
        )
    latest_year = max(points)
    bump = data.draw(st.floats(min_value=1e-3, max_value=2 * baseline), "bump")
    raised = {**points, latest_year: points[latest_year] + bump}

    target = _target(baseline_year, target_year, reduction_pct)
    as_of = date(latest_year + 1, 6, 1)
    before = evaluate(target, _series(points), as_of).status
    after = evaluate(target, _series(raised), as_of).status
    assert RANK[after] <= RANK[before], (before, after)
