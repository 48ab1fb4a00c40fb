"""Poison messages: bytes no service may die on (issue 9, defect 3).

Each case was a crash on the main branch: a raw NUL byte in a rejected
payload killed the dead-letter service (PostgreSQL refuses NUL in text),
JSON nested 10,000 deep raised `RecursionError` in the co2 and mobility
services, and a 5 MB event gave a 15 MB dead letter (the value three
times), larger than any producer's request size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from kafka import KafkaProducer
from sqlalchemy import Engine

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import Incoming
from klimapuls.core.deadletter import MAX_PAYLOAD_BYTES, DeadLetter
from klimapuls.deadletter.handlers import DeadLetterHandler
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.settings import Settings
from klimapuls.stack.runner import Stack
from tests.helpers import co2_event, rows, scalar, wait_for

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

NUL_IN_PAYLOAD = b'{"schema": "co2_account.v1", "source": "a\x00b"}'
NUL_IN_KEY = b'{"schema": "co2_account.v1", "\\u0000": 1}'
LONE_SURROGATE = json.dumps(
    {**co2_event("101", 2020, "energy", 1.0), "source": "\ud800"}
).encode()
DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
NOT_UTF8 = b'{"schema": "co2_account.v1", "source": "K\xf8benhavn"}'


def _huge(size: int) -> bytes:
    event = co2_event("101", 2020, "energy", 1.0)
    event["source"] = "x" * size
    return json.dumps(event).encode()


POISON = {
    "nul-in-payload": NUL_IN_PAYLOAD,
    "nul-in-key": NUL_IN_KEY,
    "lone-surrogate": LONE_SURROGATE,
    "deep-array": DEEP,
    "deep-object": DEEP_OBJECT,
    "not-utf8": NOT_UTF8,
    "400kb": _huge(400_000),
    "5mb": _huge(5_000_000),
}

HANDLERS: dict[str, tuple[Callable[..., object], str]] = {
    "co2": (Co2Handler, "co2_account"),
    "fleet": (FleetHandler, "fleet_status"),
    "mobility": (MobilityHandler, "mobility_count"),
    "initiatives": (InitiativeHandler, "initiative_status"),
}


@pytest.mark.parametrize("service", sorted(HANDLERS))
@pytest.mark.parametrize("case", sorted(POISON))
def test_poison_becomes_one_bounded_dead_letter_that_the_table_takes(
    engine: Engine, service: str, case: str
) -> None:
    make, kind = HANDLERS[service]
    handler = make(engine, lambda: NOW, name=service)
    raw = POISON[case]
    result = handler.handle([Incoming(kind, raw, f"{kind}:0:{len(raw)}")])  # type: ignore[attr-defined]

    assert len(result.dead_letters) == 1
    letter = result.dead_letters[0]
    body = letter.to_json()
    # Bounded: the payload once, cut to the documented size, plus the reasons.
    assert len(body) < MAX_PAYLOAD_BYTES + 16_384
    assert letter.payload_sha256 == hashlib.sha256(raw).hexdigest()
    assert letter.payload_size == len(raw)
    assert letter.payload_truncated == (len(raw) > MAX_PAYLOAD_BYTES)

    stored = DeadLetterHandler(engine, lambda: NOW).handle([body])
    assert stored.stored == 1
    (row,) = rows(engine, "SELECT * FROM dead_letter")
    assert row["payload_sha256"] == hashlib.sha256(raw).hexdigest()
    assert row["payload_size"] == len(raw)
    if not letter.payload_truncated:
        assert letter.raw_payload() == raw


def test_the_raw_payload_survives_exactly_when_it_is_not_text() -> None:
    letter = DeadLetter.rejected(
        kind="co2_account",
        origin="test",
        payload=NUL_IN_PAYLOAD,
        field="$",
        reason="not valid JSON",
        rejected_by="pytest",
        rejected_at=NOW,
    )
    assert letter.payload_encoding == "base64"
    assert DeadLetter.from_json(letter.to_json()).raw_payload() == NUL_IN_PAYLOAD
    text = DeadLetter.rejected(
        kind="co2_account",
        origin="test",
        payload=b'{"year": "x"}',
        field="year",
        reason="not an integer",
        rejected_by="pytest",
        rejected_at=NOW,
    )
    assert text.payload_encoding == "utf-8"
    assert text.payload == '{"year": "x"}'


def test_a_dead_letter_of_a_dead_letter_topic_message_that_is_garbage_is_kept(
    engine: Engine,
) -> None:
    handler = DeadLetterHandler(engine, lambda: NOW)
    result = handler.handle([DEEP, NUL_IN_PAYLOAD, b"\xff\xfe", _huge(2_000_000)])
    assert result.stored == 4
    assert scalar(engine, "SELECT count(*) FROM dead_letter WHERE kind IS NULL") == 4


def test_the_log_line_of_a_huge_rejected_event_is_short(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    event = co2_event("101", 2020, "energy", 1.0)
    event["year"] = "9" * 1_000_000  # a schema error whose message repeats it
    handler = Co2Handler(engine, lambda: NOW)
    with caplog.at_level(logging.WARNING):
        result = handler.handle(
            [Incoming("co2_account", json.dumps(event).encode(), "co2-account:0:1")]
        )
    assert len(result.dead_letters) == 1
    assert max(len(r.getMessage()) for r in caplog.records) < 2_000
    assert len(result.dead_letters[0].reason) < 2_000


@pytest.mark.timeout(180)
def test_poison_on_the_broker_stops_no_service(
    run_services: Callable[..., Stack], settings: Settings, engine: Engine
) -> None:
    stack = run_services("co2", "mobility", "deadletter")
    producer = KafkaProducer(
        **settings.kafka.kafka_python_options(),
        acks="all",
        max_request_size=8 * 1024 * 1024,
    )
    topics = settings.topics
    for raw in POISON.values():
        producer.send(topics.co2_account, raw)
        producer.send(topics.mobility_count, raw)
    good = co2_event("101", 2020, "energy", 123.0)
    producer.send(topics.co2_account, json.dumps(good).encode())
    producer.flush()
    producer.close()

    wait_for(
        lambda: scalar(engine, "SELECT count(*) FROM co2_account"),
        lambda n: n == 1,
        timeout_s=120,
    )
    wait_for(
        lambda: scalar(engine, "SELECT count(*) FROM dead_letter"),
        lambda n: n == 2 * len(POISON),
        timeout_s=120,
    )
    for name, process in stack.processes.items():
        assert process.poll() is None, f"{name} stopped"
