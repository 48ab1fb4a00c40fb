"""The targets service's handler on a real PostgreSQL: one writer of targets.

Regression tests of the architecture issue: a revision seen by one service
was lost to the others (defect 1), and the project's own example target, an
identical re-declaration of a seeded one, was refused (defect 3).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import BatchResult, Incoming
from klimapuls.core.fold import EventFold
from klimapuls.core.identity import Verdict
from klimapuls.core.messages import SeriesChange
from klimapuls.core.reference import municipality_codes, seed_target_events
from klimapuls.core.validation import validate_event
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.targets.handlers import TargetsHandler
from tests.fleet.factories import fleet_event
from tests.helpers import co2_event, rows, scalar, target_event
from tests.mobility.factories import count_event

NOW = datetime(2026, 11, 1, tzinfo=UTC)
EXAMPLE = Path(__file__).parent.parent.parent / "schemas/examples/target.v1.json"


def _batch(*events: dict[str, Any] | bytes, kind: str = "target") -> list[Incoming]:
    return [
        Incoming(
            kind, e if isinstance(e, bytes) else json.dumps(e).encode(), f"t:0:{i}"
        )
        for i, e in enumerate(events)
    ]


def _notices(result: BatchResult) -> list[Incoming]:
    return [
        Incoming("series_change", n.to_json(), "series-change:0:0")
        for n in result.series_changes
    ]


def _versions(engine: Engine) -> dict[str, int]:
    return {
        r["target_id"]: r["version"]
        for r in rows(engine, "SELECT target_id, version FROM target_progress")
    }


def test_an_identical_redeclaration_of_a_seeded_target_is_a_duplicate(
    engine: Engine, grant: Callable[..., None]
) -> None:
    # Both producers may write the region's targets (issue 9: grants).
    grant("region-hovedstaden", "1084")
    grant("someone", "1084")
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    seed = next(e for e in seed_target_events() if e["target_id"] == "region-co2-2030")
    assert example["event_id"] != seed["event_id"]  # another envelope ...
    resent = {**seed, "event_id": "re-declared", "producer": "someone"}  # ... same
    result = TargetsHandler(engine, lambda: NOW).handle(_batch(example, resent))
    assert result.verdicts == [Verdict.DUPLICATE, Verdict.DUPLICATE]
    assert result.dead_letters == []
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM target_version WHERE target_id = 'region-co2-2030'",
        )
        == 1
    )
    # The offline path and the producer's check agree.
    fold = EventFold()
    assert fold.add("target", validate_event("target", example)) is Verdict.DUPLICATE


def test_another_definition_under_a_used_version_is_refused(
    engine: Engine, grant: Callable[..., None]
) -> None:
    grant("region-hovedstaden", "1084")
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    changed = {**example, "event_id": "changed", "reduction_pct": 80}
    result = TargetsHandler(engine, lambda: NOW).handle(_batch(changed))
    [letter] = result.dead_letters
    assert letter.field == "version"
    assert "a revision needs a new version" in letter.reason


def test_two_events_claiming_one_target_version_in_a_batch_are_not_both_kept(
    engine: Engine,
) -> None:
    a = target_event("x-target", 1, reduction_pct=50)
    b = {**target_event("x-target", 1, reduction_pct=60), "event_id": "other-id"}
    result = TargetsHandler(engine, lambda: NOW).handle(_batch(a, b))
    stored = rows(
        engine,
        "SELECT event_id, reduction_pct FROM target_version "
        "WHERE target_id = 'x-target'",
    )
    assert [(r["event_id"], float(r["reduction_pct"])) for r in stored] == [
        (a["event_id"], 50.0)
    ]
    [letter] = result.dead_letters
    assert letter.event_id == "other-id"


def _series_batches() -> dict[str, tuple[Callable[..., Any], list[Incoming]]]:
    accounts = [
        co2_event(code, year, "energy", tonnes)
        for code in municipality_codes()
        for year, tonnes in ((1990, 1000.0), (2022, 400.0), (2023, 380.0))
    ]
    fleet = [
        fleet_event("movia", f"{y}-12-31", garage="G", diesel=100 - v, hvo=v)
        for y, v in ((2022, 39), (2023, 45), (2024, 53))
    ]
    counts = [
        count_event("bike-1", "bike", f"2024-{m:02d}-10T08:00:00+00:00", 100)
        for m in range(1, 13)
    ]
    return {
        "co2": (Co2Handler, _batch(*accounts, kind="co2_account")),
        "fleet": (FleetHandler, _batch(*fleet, kind="fleet_status")),
        "mobility": (MobilityHandler, _batch(*counts, kind="mobility_count")),
    }


REVISIONS = [
    target_event("region-co2-2030", 2, reduction_pct=90, name="-90 % i 2030"),
    target_event(
        "movia-fossil-free-2030",
        2,
        scope="movia",
        indicator="fossil_free_bus_share",
        baseline_year=None,
        reduction_pct=None,
        target_value=100,
        target_year=2029,
    ),
    target_event(
        "bike-trips-2030",
        2,
        indicator="bike_trips",
        baseline_year=2024,
        reduction_pct=None,
        increase_pct=25,
    ),
]


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["co2", "fleet", "mobility", "targets"])),
    ids="-".join,
)
def test_a_revision_moves_every_progress_row_at_once_whatever_the_order(
    engine: Engine, order: tuple[str, ...]
) -> None:
    """On main, mobility storing the revision first left co2's progress on v1."""
    series = _series_batches()
    targets = TargetsHandler(engine, lambda: NOW)
    for name in order:
        if name == "targets":
            targets.handle(_batch(*REVISIONS))
        else:
            make, batch = series[name]
            notices = _notices(make(engine, lambda: NOW).handle(batch))
            targets.handle(notices)
        # After every step each revised target is at its newest stored version.
        stored = {
            r["target_id"]: r["v"]
            for r in rows(
                engine,
                "SELECT target_id, max(version) AS v FROM target_version "
                "GROUP BY target_id",
            )
        }
        assert _versions(engine) == stored
    assert {t: _versions(engine)[t] for t in (r["target_id"] for r in REVISIONS)} == {
        "region-co2-2030": 2,
        "movia-fossil-free-2030": 2,
        "bike-trips-2030": 2,
    }
    region = rows(
        engine,
        "SELECT target_value, latest_value FROM target_progress "
        "WHERE target_id = 'region-co2-2030'",
    )[0]
    assert region["target_value"] == pytest.approx(29_000 * 0.1)
    assert region["latest_value"] == pytest.approx(29 * 380.0)


def test_a_fleet_target_sent_after_the_figures_gets_progress(engine: Engine) -> None:
    fleet = FleetHandler(engine, lambda: NOW)
    notices = _notices(
        fleet.handle(
            _batch(
                fleet_event("movia", "2022-12-31", garage="G", diesel=61, hvo=39),
                fleet_event("movia", "2024-12-31", garage="G", diesel=30, hvo=70),
                kind="fleet_status",
            )
        )
    )
    targets = TargetsHandler(engine, lambda: datetime(2025, 6, 1, tzinfo=UTC))
    targets.handle(notices)
    target = target_event(
        "test-movia-fossil-free",
        scope="movia",
        indicator="fossil_free_bus_share",
        baseline_year=None,
        reduction_pct=None,
        target_value=100,
        target_year=2030,
    )
    result = targets.handle(_batch(target))
    (p,) = rows(
        engine,
        "SELECT * FROM target_progress WHERE target_id = 'test-movia-fossil-free'",
    )
    assert p["unit"] == "%"
    assert (p["baseline_year"], p["baseline_value"]) == (2022, pytest.approx(39.0))
    assert (p["latest_year"], p["latest_value"]) == (2024, pytest.approx(70.0))
    # The path 39 % -> 100 % over 8 years passes 54.25 % in 2024: on track.
    assert p["path_value"] == pytest.approx(54.25)
    assert p["status"] == "on_track"
    changes = [
        c for c in result.status_changes if c.target_id == "test-movia-fossil-free"
    ]
    assert [c.status for c in changes] == ["on_track"]
    assert all(c.id is not None for c in changes)
    path = rows(
        engine,
        "SELECT year, path_value FROM target_trajectory "
        "WHERE target_id = 'test-movia-fossil-free' ORDER BY year",
    )
    assert [r["year"] for r in path] == list(range(2022, 2031))
    assert path[2]["path_value"] == pytest.approx(54.25)


def test_time_alone_can_change_a_status_and_a_refresh_logs_it(engine: Engine) -> None:
    clock = [datetime(2024, 12, 31, tzinfo=UTC)]
    co2 = Co2Handler(engine, lambda: clock[0])
    targets = TargetsHandler(engine, lambda: clock[0])
    accounts = [
        co2_event("101", year, "energy", tonnes)
        for year, tonnes in ((1990, 100.0), (2020, 60.0), (2021, 55.0), (2022, 50.0))
    ]
    targets.handle(_notices(co2.handle(_batch(*accounts, kind="co2_account"))))
    targets.handle(_batch(target_event("kbh-2030", scope="101", reduction_pct=70)))
    stale = "SELECT stale FROM target_progress WHERE target_id = 'kbh-2030'"
    assert scalar(engine, stale) is False
    clock[0] = datetime(2025, 3, 1, tzinfo=UTC)  # 2022 is now > 2 years old
    result = targets.refresh()
    assert scalar(engine, stale) is True
    [change] = [c for c in result.status_changes if c.target_id == "kbh-2030"]
    assert (change.previous_stale, change.stale) == (False, True)
    assert targets.refresh().status_changes == []  # nothing new: nothing logged


def test_a_series_notice_alone_recomputes(engine: Engine) -> None:
    co2 = Co2Handler(engine, lambda: NOW)
    co2.handle(_batch(co2_event("101", 1990, "energy", 100.0), kind="co2_account"))
    notice = SeriesChange.of("co2", ["co2e_total"], ["101"], NOW)
    targets = TargetsHandler(engine, lambda: NOW)
    targets.handle(_batch(target_event("kbh-2030", scope="101", reduction_pct=70)))
    assert (
        scalar(
            engine,
            "SELECT latest_year FROM target_progress WHERE target_id = 'kbh-2030'",
        )
        == 1990
    )
    co2.handle(_batch(co2_event("101", 2023, "energy", 50.0), kind="co2_account"))
    targets.handle([Incoming("series_change", notice.to_json(), "s:0:1")])
    assert (
        scalar(
            engine,
            "SELECT latest_year FROM target_progress WHERE target_id = 'kbh-2030'",
        )
        == 2023
    )


def test_a_new_version_cannot_move_a_target_to_another_scope(
    engine: Engine, tmp_path: Path
) -> None:
    # Given version 1 of a Frederiksberg target, stored.
    first = target_event("frb-co2", 1, scope="147")
    handler = TargetsHandler(engine, lambda: NOW)
    assert handler.handle(_batch(first)).verdicts == [Verdict.NEW]
    # When version 2 names the region's scope, and a seed target id is
    # re-declared under Frederiksberg's scope:
    moved = target_event("frb-co2", 2, scope="1084")
    seed = next(e for e in seed_target_events() if e["scope"] == "1084")
    taken = target_event(seed["target_id"], 99, scope="147")
    result = handler.handle(_batch(moved, taken))
    # Then both are dead letters on `scope`, and nothing is stored.
    assert result.verdicts == [Verdict.REJECTED, Verdict.REJECTED]
    reasons = [
        (
            "scope",
            "target 'frb-co2' belongs to scope '147'; "
            "a new version cannot move it to '1084'",
        ),
        (
            "scope",
            f"target {seed['target_id']!r} belongs to scope '1084'; "
            "a new version cannot move it to '147'",
        ),
    ]
    assert [(d.field, d.reason) for d in result.dead_letters] == [
        (field, f"{field}: {reason}") for field, reason in reasons
    ]
    assert scalar(engine, "SELECT count(*) FROM target_version WHERE version = 99") == 0
    assert (
        scalar(
            engine,
            "SELECT max(version) FROM target_version WHERE target_id = 'frb-co2'",
        )
        == 1
    )
    # A new version in the same scope is still a revision.
    same = target_event("frb-co2", 2, scope="147", reduction_pct=90)
    assert handler.handle(_batch(same)).verdicts == [Verdict.NEW]
    # The offline path refuses the same events with the same reasons.
    fold = EventFold()
    assert fold.add("target", validate_event("target", first)) is Verdict.NEW
    for event, (field, reason) in zip((moved, taken), reasons, strict=True):
        judgement = fold.judge("target", validate_event("target", event))
        assert judgement.verdict is Verdict.REJECTED
        [issue] = judgement.error.issues
        assert (issue.field, issue.reason) == (field, reason)
    # And so does `produce --dry-run`, line by line.
    path = tmp_path / "targets.jsonl"
    path.write_text(
        "\n".join(json.dumps(e) for e in (first, moved, taken, same)) + "\n",
        encoding="utf-8",
    )
    out = CliRunner().invoke(app, ["produce", "target", str(path), "--dry-run"])
    assert out.exit_code == 1, out.output
    assert f"{path}:2: scope: {reasons[0][1]}" in out.output
    assert f"{path}:3: scope: {reasons[1][1]}" in out.output
    assert "2 valid (dry run, nothing sent), 2 invalid" in out.output
