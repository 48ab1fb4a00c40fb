"""No facts from the future: times beyond the horizon are dead letters by field.

A mobility count in 3024 created a 3024-06 partition and a CO2 account of
2099 with vintage 2100 was stored (issue 9, defect 6). The validators refuse
a `reported_at` more than a day after the receiving service's clock and
times more than a day (plans: a year) after `reported_at`; the services
and the offline reader refuse the same events for the same field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import Incoming
from klimapuls.core.errors import EventValidationError
from klimapuls.core.fold import read_jsonl
from klimapuls.core.validation import validate_event
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import in_transaction
from tests.helpers import co2_event, scalar
from tests.mobility.factories import count_event

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)

COUNT_3024 = count_event("site-f", "bike", "3024-06-10T06:00:00+00:00", 10)
ACCOUNT_2099 = co2_event(
    "101", 2099, "energy", 1.0, "2100-05-01", reported_at="2026-10-01T09:00:00+00:00"
)
FUTURE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("mobility_count", COUNT_3024, "reported_at"),
    ("co2_account", ACCOUNT_2099, "vintage"),
    (
        "mobility_count",
        count_event(
            "site-g",
            "car",
            "2026-10-31T06:00:00+00:00",
            5,
            hours=72,
            reported_at="2026-10-31T08:00:00+00:00",
        ),
        "interval_end",
    ),
    (
        "initiative_status",
        {
            "schema": "initiative_status.v1",
            "event_id": "future-round",
            "producer": "pytest",
            "reported_at": "2026-10-15T09:00:00+00:00",
            "initiative_id": "test-initiative",
            "round": "2030-10",
            "status": "on_track",
            "tovholdere": [],
        },
        "round",
    ),
]


def _fields(kind: str, event: dict[str, Any], now: datetime | None) -> list[str]:
    with pytest.raises(EventValidationError) as caught:
        validate_event(kind, event, now=now)
    return [i.field for i in caught.value.issues]


@pytest.mark.parametrize(("kind", "event", "field"), FUTURE_CASES)
def test_a_time_beyond_the_horizon_is_refused_naming_the_field(
    kind: str, event: dict[str, Any], field: str
) -> None:
    assert field in _fields(kind, event, NOW)


def test_the_validators_take_now_from_the_caller_and_never_read_the_clock() -> None:
    # The same count, reported "now" in 3024, is fine for a clock in 3024.
    later = datetime(3024, 7, 1, tzinfo=UTC)
    assert validate_event("mobility_count", COUNT_3024, now=later) == COUNT_3024
    # Without a clock only the times after reported_at are checked.
    assert validate_event("mobility_count", COUNT_3024) == COUNT_3024
    assert _fields("co2_account", ACCOUNT_2099, None) == ["vintage"]


def test_times_inside_the_horizon_pass() -> None:
    # Reported an hour ahead of the service's clock (a clock a little fast).
    ahead = count_event(
        "s", "walk", "2026-11-01T10:00:00+00:00", 3, reported_at="2026-11-01T13:00:00Z"
    )
    assert validate_event("mobility_count", ahead, now=NOW) == ahead


def _handle(handler: Any, kind: str, event: dict[str, Any]) -> Any:
    return handler.handle([Incoming(kind, json.dumps(event).encode(), "t:0:0")])


def test_services_dead_letter_future_facts_and_make_no_partition(
    engine: Engine,
) -> None:
    mobility = _handle(MobilityHandler(engine, lambda: NOW), *FUTURE_CASES[0][:2])
    co2 = _handle(Co2Handler(engine, lambda: NOW), *FUTURE_CASES[1][:2])
    plan = _handle(InitiativeHandler(engine, lambda: NOW), *FUTURE_CASES[3][:2])
    assert [d.field for d in mobility.dead_letters] == ["reported_at"]
    assert [d.field for d in co2.dead_letters] == ["vintage"]
    assert [d.field for d in plan.dead_letters] == ["round"]
    assert scalar(engine, "SELECT count(*) FROM mobility_count") == 0
    assert scalar(engine, "SELECT count(*) FROM co2_account") == 0
    assert scalar(engine, "SELECT to_regclass('mobility_count_3024_06')") is None


def test_offline_refuses_the_same_lines_for_the_same_fields() -> None:
    lines = [json.dumps(event) for _, event, _ in FUTURE_CASES]
    refused = [line.error.field for line in read_jsonl(lines, NOW) if line.error]
    assert refused == [field for _, _, field in FUTURE_CASES]


def test_storage_never_creates_a_partition_beyond_the_horizon(engine: Engine) -> None:
    start = datetime(3024, 6, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="beyond the horizon"):
        in_transaction(engine, lambda c: counts.ensure_partitions(c, [start], NOW))
    assert scalar(engine, "SELECT to_regclass('mobility_count_3024_06')") is None
