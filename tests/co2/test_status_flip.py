"""A restated year flips a target's status: stored with its time, and published.

København (101) has two DK2020 targets: -50 % by 2030 and net zero by 2050,
both against 1990 = 1,000 t. The 2030 path is P(t) = 1,000 - 12.5 * (t - 1990),
so P(2023) = 587.5 t.

- First figures 2019-2023: 600, 580, 560, 540, 520 t. 520 <= 587.5 and the
  trend (-20 t a year) gives 380 t in 2030 <= 500 t: on track.
- 2023 is restated to 700 t: above the path, and the trend (+16 t a year
  through 600, 580, 560, 540, 700) gives 740 t in 2030 > 500 t: off track.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.producer import EventProducer
from klimapuls.settings import Settings
from klimapuls.stack.runner import Stack
from tests.helpers import (
    co2_event,
    rows,
    scalar,
    target_event,
    topic_values,
    wait_for,
)

pytestmark = pytest.mark.timeout(180)

FIRST = {1990: 1000.0, 2019: 600.0, 2020: 580.0, 2021: 560.0, 2022: 540.0, 2023: 520.0}
KBH_2030 = target_event("kbh-dk2020-2030", scope="101", reduction_pct=50)
KBH_2050 = target_event(
    "kbh-dk2020-2050", scope="101", reduction_pct=100, target_year=2050
)


def _status(engine: Engine, target_id: str) -> Any:
    return scalar(
        engine, "SELECT status FROM target_progress WHERE target_id = :t", t=target_id
    )


def _published(settings: Settings, target_id: str) -> list[dict[str, Any]]:
    values = topic_values(settings, settings.topics.target_status, quiet_s=2)
    changes = [json.loads(value) for value in values]
    return [c for c in changes if c["target_id"] == target_id]


def test_a_restated_year_flips_the_status_and_the_change_is_stored_and_published(
    run_services: Callable[..., Stack],
    producer: EventProducer,
    engine: Engine,
    settings: Settings,
) -> None:
    run_services("co2", "targets")
    for year, tonnes in FIRST.items():
        producer.send("co2_account", co2_event("101", year, "energy", tonnes))
    producer.flush()
    wait_for(
        lambda: scalar(
            engine, "SELECT count(*) FROM emission_series WHERE scope='101'"
        ),
        lambda n: n == len(FIRST),
    )
    producer.send("target", KBH_2030)
    producer.send("target", KBH_2050)
    producer.flush()
    wait_for(lambda: _status(engine, "kbh-dk2020-2030"), lambda s: s == "on_track")

    # Both DK2020 targets are measured on København's own series.
    progress = {
        r["target_id"]: r
        for r in rows(engine, "SELECT * FROM target_progress WHERE scope = '101'")
    }
    assert progress["kbh-dk2020-2030"]["path_value"] == pytest.approx(587.5)
    assert progress["kbh-dk2020-2030"]["forecast_value"] == pytest.approx(380.0)
    assert progress["kbh-dk2020-2050"]["baseline_value"] == 1000.0
    assert progress["kbh-dk2020-2050"]["latest_value"] == 520.0
    assert progress["kbh-dk2020-2050"]["target_value"] == 0.0

    restated = co2_event("101", 2023, "energy", 700.0, "2025-05-01")
    producer.send("co2_account", restated)
    producer.flush()
    wait_for(lambda: _status(engine, "kbh-dk2020-2030"), lambda s: s == "off_track")
    flipped = rows(
        engine, "SELECT * FROM target_progress WHERE target_id = 'kbh-dk2020-2030'"
    )[0]
    assert flipped["latest_value"] == 700.0
    assert flipped["gap_to_path"] == pytest.approx(112.5)
    assert flipped["forecast_value"] == pytest.approx(740.0)

    # The change is logged with its time, then sent on `target-status`.
    log = wait_for(
        lambda: rows(
            engine,
            "SELECT * FROM target_status_change WHERE target_id = 'kbh-dk2020-2030' "
            "ORDER BY id",
        ),
        lambda r: len(r) >= 1 and r[-1]["published_at"] is not None,
    )
    last = log[-1]
    assert (last["previous_status"], last["status"]) == ("on_track", "off_track")
    assert last["changed_at"] is not None
    assert last["latest_value"] == 700.0
    assert log[-2]["status"] == "on_track"

    published = wait_for(
        lambda: _published(settings, "kbh-dk2020-2030"),
        lambda changes: any(c["id"] == last["id"] for c in changes),
    )
    assert [c["status"] for c in published][-2:] == ["on_track", "off_track"]
    message = next(c for c in published if c["id"] == last["id"])
    assert message["previous_status"] == "on_track"
    assert message["version"] == 1
    assert message["changed_at"] == last["changed_at"].isoformat()
