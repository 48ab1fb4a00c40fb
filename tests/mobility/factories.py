"""Factories of mobility test data: valid `mobility_count.v1` and target events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.helpers import target_event


def count_event(
    site_id: str,
    mode: str,
    start: str,
    count: int,
    *,
    municipality_code: str = "147",
    direction: str = "in",
    hours: float = 1,
    revision: int | None = None,
    reported_at: str | None = None,
    event_id: str | None = None,
    delay_hours: float | None = None,
) -> dict[str, Any]:
    """A valid count event; `start` is an RFC 3339 instant."""
    begin = datetime.fromisoformat(start)
    end = begin + timedelta(hours=hours)
    event: dict[str, Any] = {
        "schema": "mobility_count.v1",
        "event_id": event_id
        or f"test:{site_id}:{mode}:{direction}:{start}:r{revision or 0}",
        "producer": "pytest",
        "reported_at": reported_at or (end + timedelta(days=1)).isoformat(),
        "site_id": site_id,
        "municipality_code": municipality_code,
        "mode": mode,
        "direction": direction,
        "interval_start": start,
        "interval_end": end.isoformat(),
        "count": count,
    }
    if revision is not None:
        event["revision"] = revision
    if delay_hours is not None:
        event["delay_hours"] = delay_hours
    return event


# Own ids, so the tests hold whatever targets the seed data carries.
SUSTAINABLE_TRIPS = "test-sustainable-trips-2035"
BIKE_TRIPS = "test-bike-trips-2030"


def sustainable_trips_target(**fields: Any) -> dict[str, Any]:
    """Like `sustainable-trips-2035`: 2/3 of trips by bike, foot or transit."""
    event = target_event(
        SUSTAINABLE_TRIPS,
        indicator="sustainable_trip_share",
        baseline_year=2022,
        target_year=2035,
        reduction_pct=None,
        target_value=200 / 3,
        name="2/3 af turene med kollektiv transport, cykel eller gang i 2035",
    )
    event.update(fields)
    return event


def bike_trips_target(**fields: Any) -> dict[str, Any]:
    """Like `bike-trips-2030`: +20 % bike trips from the baseline year."""
    event = target_event(
        BIKE_TRIPS,
        indicator="bike_trips",
        baseline_year=2022,
        target_year=2030,
        reduction_pct=None,
        increase_pct=20,
        name="+20 % cykelture i 2030",
    )
    event.update(fields)
    return event
