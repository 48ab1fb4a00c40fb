"""Fleet event factories shared by the fleet tests."""

from __future__ import annotations

from typing import Any


def fleet_event(
    operator: str,
    day: str,
    *,
    garage: str | None = None,
    contract: str | None = None,
    reported_at: str | None = None,
    event_id: str | None = None,
    municipality_code: str | None = None,
    **buses: int,
) -> dict[str, Any]:
    """A valid `fleet_status.v1` event; propulsions as keyword counts."""
    unit = garage if garage is not None else contract
    reported_at = reported_at or f"{day}T12:00:00+00:00"
    event: dict[str, Any] = {
        "schema": "fleet_status.v1",
        "event_id": event_id or f"test:{operator}:{unit}:{day}:{reported_at}",
        "producer": "pytest",
        "reported_at": reported_at,
        "operator": operator,
        "date": day,
        "buses": buses or {"diesel": 0},
    }
    if garage is not None:
        event["garage"] = garage
    if contract is not None:
        event["contract"] = contract
    if municipality_code is not None:
        event["municipality_code"] = municipality_code
    return event
