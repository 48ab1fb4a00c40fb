"""The HTTP gateway on a real broker and database (uvicorn in this process).

Given a producer's token and events, expect: 202 with the ids once the
broker has them, stamped with the token's producer; 401 without a valid
token; 403 (nothing sent) for another municipality's code; 413, 422 with
every field, 429 with Retry-After, 503 with a clear body when the broker is
away; tokens hashed at rest and revocable.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine

from klimapuls.gateway.app import start_draining
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack.broker import free_port
from klimapuls.storage import grants
from klimapuls.storage.db import in_transaction
from tests.fleet.factories import fleet_event
from tests.gateway.conftest import RunningGateway
from tests.helpers import co2_event, rows, wait_for

Token = Callable[..., str]


def _read(settings: Settings, topic: str, expected: int) -> list[dict[str, Any]]:
    """Every message on `topic` (waits for `expected` of them, at most 30 s)."""
    consumer = KafkaConsumer(
        **settings.kafka.kafka_python_options(), group_id=None, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        bodies: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(bodies) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                bodies.extend(json.loads(r.value) for r in records)
        # A moment more: nothing beyond the expected may have arrived.
        for records in consumer.poll(timeout_ms=500).values():
            bodies.extend(json.loads(r.value) for r in records)
        return bodies
    finally:
        consumer.close()


def _accounts(code: str, n: int, year: int = 2022) -> list[dict[str, Any]]:
    sectors = ("energy", "transport", "agriculture", "waste", "industry", "other")
    return [
        co2_event(code, year - i // len(sectors), sectors[i % len(sectors)], 10.0 + i)
        for i in range(n)
    ]


def test_accepted_events_are_on_the_broker_stamped_with_the_tokens_producer(
    gateway: RunningGateway, gateway_settings: Settings, token: Token
) -> None:
    frederiksberg = token("frederiksberg", "147")
    events = _accounts("147", 12)
    events[0]["producer"] = "someone-else"  # the gateway stamps its own

    answer = gateway.post(events, frederiksberg)
    one = gateway.post(co2_event("147", 2019, "energy", 1.0), frederiksberg)

    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "accepted": 12,
        "event_ids": [e["event_id"] for e in events],
    }
    assert one.status_code == 202 and one.json()["accepted"] == 1
    on_topic = _read(gateway_settings, gateway_settings.topics.co2_account, 13)
    assert sorted(e["event_id"] for e in on_topic) == sorted(
        [e["event_id"] for e in events] + one.json()["event_ids"]
    )
    assert {e["producer"] for e in on_topic} == {"frederiksberg"}


def test_a_municipality_cannot_write_another_municipalitys_code(
    gateway: RunningGateway, gateway_settings: Settings, token: Token
) -> None:
    frederiksberg = token("frederiksberg", "147")
    mixed = [*_accounts("147", 2), co2_event("101", 2022, "energy", 0.0)]

    refused = gateway.post(mixed, frederiksberg)
    own = gateway.post(_accounts("147", 1, 2015), frederiksberg)

    assert refused.status_code == 403
    [issue] = refused.json()["issues"]
    assert issue["index"] == 2 and issue["field"] == "producer"
    assert "'101'" in issue["reason"] and "frederiksberg" in issue["reason"]
    assert own.status_code == 202
    # Nothing of the refused batch was sent: only the later, own event.
    on_topic = _read(gateway_settings, gateway_settings.topics.co2_account, 1)
    assert [e["event_id"] for e in on_topic] == own.json()["event_ids"]
    letters = _read(gateway_settings, gateway_settings.topics.dead_letter, 1)
    assert [(d["field"], d["rejected_by"]) for d in letters] == [
        ("producer", "gateway (frederiksberg)")
    ]


def test_the_region_movia_and_operators_write_their_own_scopes(
    gateway: RunningGateway, token: Token
) -> None:
    movia = token("movia", "movia")
    region = token("region-hovedstaden", "1084")
    movia_fleet = fleet_event("movia", "2025-04-01", contract="A1", diesel=2)
    arriva_fleet = fleet_event("arriva", "2025-04-01", contract="B1", diesel=2)
    region_target = {
        "schema": "target.v1",
        "event_id": "region-bike-2030:v9",
        "reported_at": "2025-01-01T00:00:00+00:00",
        "target_id": "region-extra",
        "scope": "1084",
        "indicator": "co2e_total",
        "baseline_year": 1990,
        "target_year": 2030,
        "reduction_pct": 85,
        "version": 1,
    }

    assert gateway.post(movia_fleet, movia).status_code == 202
    assert gateway.post(arriva_fleet, movia).status_code == 403
    assert gateway.post(region_target, region).status_code == 202
    # The region's scope is its own, not its municipalities'.
    assert (
        gateway.post(co2_event("101", 2022, "energy", 1.0), region).status_code == 403
    )


def test_schema_errors_answer_422_with_every_field_and_reason(
    gateway: RunningGateway, token: Token
) -> None:
    t = token("frederiksberg", "147")
    bad = co2_event("147", 2022, "energy", -5.0)
    bad["year"] = "2022"
    del bad["source"]
    answer = gateway.post([co2_event("147", 2021, "energy", 1.0), bad, 7], t)

    assert answer.status_code == 422
    issues = {(i["index"], i["field"]) for i in answer.json()["issues"]}
    assert {(1, "year"), (1, "tonnes_co2e"), (1, "source"), (2, "$")} <= issues
    assert all(i["reason"] for i in answer.json()["issues"])
    not_json = httpx.post(
        f"{gateway.url}/v1/events",
        content=b'{"schema": ',
        headers={"Authorization": f"Bearer {t}"},
    )
    assert not_json.status_code == 422
    assert not_json.json()["issues"][0]["field"] == "$"
    empty = gateway.post([], t)
    assert empty.status_code == 422


def test_without_a_valid_token_401(gateway: RunningGateway, token: Token) -> None:
    t = token("frederiksberg", "147")
    event = co2_event("147", 2022, "energy", 1.0)
    forged = t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB")

    for presented in (None, "nonsense", forged, "kpt_000000000000_" + "x" * 43):
        answer = gateway.post(event, presented)
        assert answer.status_code == 401, presented
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_are_hashed_at_rest_and_revocable(
    gateway: RunningGateway, engine: Engine, token: Token
) -> None:
    t = token("frederiksberg", "147")
    token_id, secret = t.removeprefix("kpt_").split("_", 1)
    [stored] = rows(engine, "SELECT * FROM producer_token")
    assert stored["token_id"] == token_id
    assert stored["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(v) for v in stored.values())
    event = co2_event("147", 2022, "energy", 1.0)
    assert gateway.post(event, t).status_code == 202

    in_transaction(
        engine, lambda conn: grants.revoke_token(conn, token_id, stored["created_at"])
    )

    wait_for(lambda: gateway.post(event, t).status_code, lambda s: s == 401, 10)


def test_bodies_over_the_limit_answer_413(
    start_gateway: Callable[[Settings], RunningGateway],
    gateway_settings: Settings,
    token: Token,
) -> None:
    small = start_gateway(
        gateway_settings.model_copy(update={"gateway_max_body_bytes": 4096})
    )
    t = token("frederiksberg", "147")
    big = _accounts("147", 30)
    assert len(json.dumps(big)) > 4096

    declared = small.post(big, t)

    def chunks() -> Any:
        body = json.dumps(big).encode()
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    streamed = httpx.post(
        f"{small.url}/v1/events",
        content=chunks(),
        headers={"Authorization": f"Bearer {t}"},
    )
    assert declared.status_code == 413 and streamed.status_code == 413
    assert declared.json()["limit_bytes"] == 4096
    assert small.post(big[:2], t).status_code == 202


def test_over_the_tokens_rate_429_with_retry_after(
    start_gateway: Callable[[Settings], RunningGateway],
    gateway_settings: Settings,
    token: Token,
) -> None:
    slow = start_gateway(
        gateway_settings.model_copy(update={"gateway_rate_limit": "3/minute"})
    )
    t, other = token("frederiksberg", "147"), token("koebenhavn", "101")
    answers = [slow.post(co2_event("147", 2022, "energy", 1.0), t) for _ in range(4)]

    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    # The rate is per token.
    assert slow.post(co2_event("101", 2022, "energy", 1.0), other).status_code == 202


def test_broker_away_answers_503_with_a_clear_body(
    start_gateway: Callable[[Settings], RunningGateway],
    gateway_settings: Settings,
    token: Token,
) -> None:
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    away = start_gateway(gateway_settings.model_copy(update={"kafka": nowhere}))
    t = token("frederiksberg", "147")

    answer = away.post(co2_event("147", 2022, "energy", 1.0), t)
    health = httpx.get(f"{away.url}/v1/health", timeout=30)

    assert answer.status_code == 503
    assert "Kafka broker" in answer.json()["detail"]
    assert "send the request again" in answer.json()["detail"]
    assert health.status_code == 503 and health.json()["credentials"] == "ok"


def test_broker_away_and_draining_answers_carry_retry_after(
    start_gateway: Callable[[Settings], RunningGateway],
    gateway: RunningGateway,
    gateway_settings: Settings,
    token: Token,
) -> None:
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    away = start_gateway(
        gateway_settings.model_copy(
            update={"kafka": nowhere, "gateway_port": free_port()}
        )
    )
    t = token("frederiksberg", "147")
    answer = away.post(co2_event("147", 2022, "energy", 1.0), t)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"

    # `klimapuls up` stopping (SIGUSR1 in the gateway process):
    assert gateway.post(co2_event("147", 2022, "energy", 1.0), t).status_code == 202
    start_draining(gateway.server.config.app)
    for answer in (
        gateway.post(co2_event("147", 2022, "energy", 2.0), t),
        gateway.post({"not": "checked"}, None),
        httpx.get(f"{gateway.url}/v1/health", timeout=30),
    ):
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "30"
        assert answer.json()["error"] == "draining"


def test_health_and_openapi(gateway: RunningGateway) -> None:
    health = httpx.get(f"{gateway.url}/v1/health", timeout=30)
    document = httpx.get(f"{gateway.url}/openapi.json", timeout=30).json()

    assert health.status_code == 200 and health.json()["status"] == "ok"
    post = document["paths"]["/v1/events"]["post"]
    assert {"202", "401", "403", "413", "422", "429", "503"} <= set(post["responses"])
    assert "co2_account.v1" in document["components"]["schemas"]
