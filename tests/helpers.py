"""Small helpers for tests: polling, reading a topic, and event factories."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kafka import KafkaConsumer
from sqlalchemy import Engine, text

from klimapuls.settings import Settings

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T], until: Callable[[T], bool], timeout_s: float = 60.0
) -> T:
    """Poll `probe` until `until(value)` holds; fail with the last value."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"condition not met after {timeout_s}s; last: {value!r}"
            )
        time.sleep(0.2)
        value = probe()
    return value


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    """One value from the database."""
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows as dicts."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def co2_event(
    code: str,
    year: int,
    sector: str,
    tonnes: float,
    vintage: str | None = None,
    *,
    event_id: str | None = None,
    subsector: str | None = None,
    reported_at: str | None = None,
) -> dict[str, Any]:
    """A valid `co2_account.v1` event."""
    vintage = vintage or f"{year + 1}-05-01"
    event = {
        "schema": "co2_account.v1",
        "event_id": event_id
        or f"test:{code}:{year}:{sector}:{subsector or ''}:{vintage}",
        "producer": "pytest",
        "reported_at": reported_at or f"{vintage}T09:00:00+00:00",
        "municipality_code": code,
        "year": year,
        "sector": sector,
        "tonnes_co2e": tonnes,
        "vintage": vintage,
        "source": "synthetic (test)",
    }
    if subsector is not None:
        event["subsector"] = subsector
    return event


def target_event(target_id: str, version: int = 1, **fields: Any) -> dict[str, Any]:
    """A valid `target.v1` event (emission target unless overridden)."""
    event = {
        "schema": "target.v1",
        "event_id": f"test-target:{target_id}:v{version}",
        "producer": "pytest",
        "reported_at": "2024-01-01T00:00:00+00:00",
        "target_id": target_id,
        "scope": "1084",
        "indicator": "co2e_total",
        "baseline_year": 1990,
        "target_year": 2030,
        "reduction_pct": 85,
        "version": version,
    }
    event.update(fields)
    return event


def topic_values(settings: Settings, topic: str, quiet_s: float) -> list[bytes]:
    """Every message body in `topic` from the start, once none came for `quiet_s`."""
    consumer = KafkaConsumer(
        topic,
        **settings.kafka.kafka_python_options(),
        group_id=None,
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(quiet_s * 1000),
    )
    try:
        return [message.value for message in consumer]
    finally:
        consumer.close()
