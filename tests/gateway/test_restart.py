"""A gateway restart mid-stream: every event it accepted is stored exactly once.

The gateway runs as its own process (as `up` runs it) beside the co2
service; a client sends batches and, like a real producer, sends a batch
again until it gets 202. The gateway is killed (SIGKILL) and restarted
while the client sends. Counted by event id: accepted, stored, lost (0),
doubled (0).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from klimapuls.core.reference import municipality_codes
from klimapuls.settings import Settings
from klimapuls.stack.runner import Stack
from tests.helpers import co2_event, rows, wait_for

_SECTORS = ("energy", "transport", "agriculture", "waste", "industry", "other")


def _events(n: int) -> list[dict[str, Any]]:
    codes = municipality_codes()
    return [
        co2_event(
            codes[i % len(codes)],
            2000 + (i // len(codes)) // len(_SECTORS),
            _SECTORS[(i // len(codes)) % len(_SECTORS)],
            100.0 + i,
        )
        for i in range(n)
    ]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _send_until_accepted(
    url: str, token: str, batch: list[dict[str, Any]]
) -> list[str]:
    while True:
        try:
            answer = httpx.post(
                f"{url}/v1/events",
                json=batch,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            if answer.status_code == 202:
                ids: list[str] = answer.json()["event_ids"]
                return ids
            assert answer.status_code == 503, answer.text
        except httpx.TransportError:
            pass  # the gateway is down: send the same batch again
        time.sleep(0.2)


@pytest.mark.timeout(240)
def test_events_accepted_before_a_gateway_restart_are_stored_exactly_once(
    gateway_settings: Settings, engine: Engine, token: Callable[..., str]
) -> None:
    url = f"http://127.0.0.1:{gateway_settings.gateway_port}"
    importer = token("region-importer", "*")
    stack = Stack(gateway_settings)
    try:
        stack.start_services(("gateway", "co2"))
        wait_for(lambda: _healthy(url), bool, 60)
        events = _events(1200)
        batches = [events[i : i + 50] for i in range(0, len(events), 50)]
        accepted: list[str] = []

        def client() -> None:
            for batch in batches:
                accepted.extend(_send_until_accepted(url, importer, batch))

        sender = threading.Thread(target=client)
        sender.start()
        wait_for(lambda: len(accepted), lambda n: n >= 300, 60)
        stack.processes["gateway"].kill()  # SIGKILL, mid-stream
        stack.processes["gateway"].wait(10)
        stack.start_services(("gateway",))
        sender.join(120)
        assert not sender.is_alive()

        sent = {e["event_id"] for e in events}
        assert set(accepted) == sent
        stored = wait_for(
            lambda: rows(
                engine,
                "SELECT event_id, count(*) AS n FROM co2_account GROUP BY event_id",
            ),
            lambda found: len(found) >= len(sent),
            120,
        )
        counts = {r["event_id"]: r["n"] for r in stored}
        lost = sent - set(counts)
        doubled = [eid for eid, n in counts.items() if n > 1]
        print(
            f"gateway restart: sent {len(sent)}, accepted {len(set(accepted))}, "
            f"stored {len(counts)}, lost {len(lost)}, doubled {len(doubled)}"
        )
        assert (lost, doubled, set(counts) - sent) == (set(), [], set())
    finally:
        stack.stop()
