"""One `klimapuls up`; every service it supervises is killed (SIGKILL) in turn.

Issue 9, fault suite: while events of every family stream in (valid ones
on Kafka, malformed ones for the dead-letter path, batches posted through
the gateway), each service of `SERVICES` is killed mid-stream and must be
restarted by `up`. Counted at the end by event id (dead letters by their
`dead_letter_id`): sent, acknowledged, stored, dead-lettered, lost (0),
doubled (0); the targets' progress and the alerts' observations must be
derived again after their restarts, without doubles.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from klimapuls.simulator import simulate
from klimapuls.stack.runner import SERVICES
from tests.stack.helpers import (
    Sender,
    Up,
    chunks,
    clean_env,
    dead_lettered,
    malformed,
    query,
    rollup_sums,
    topic_of,
    valid_events,
    wait_stored,
)

_SEED = 23
_PER_KILL = 400  # valid events on Kafka per kill: half before, half after it
_BAD_PER_KILL = 6  # malformed bodies per kill
_HTTP_BATCH = 20
_TARGET = "movia-fossil-free-2030"  # measured by the fleet feed
_TOKEN_CREATE = ("tokens", "create", "--producer", "kill-each", "--scope", "*")


def _target_versions(first: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    """New versions of the seed's Movia target, its goal swinging between 1 %
    and 100 %, so that each one moves the status: alerts get work."""
    target = next(
        e.body
        for e in simulate(_SEED)
        if e.kind == "target"
        and isinstance(e.body, dict)
        and e.body["target_id"] == _TARGET
    )
    assert isinstance(target, dict)
    return [
        (
            "target",
            {
                **target,
                "event_id": f"kill-each:{_TARGET}:v{v}",
                "version": v,
                # 1 %: reached (`achieved`); 100 %: `on_track` as seeded.
                "target_value": 1 if v % 2 else 100,
            },
        )
        for v in range(first, first + count)
    ]


def _gateway_url(output: str) -> str:
    found = re.search(r"gateway at (http://\S+)/v1/events", output)
    assert found, output
    return found.group(1)


def _create_token(database_url: str) -> str:
    """A token (every scope) as a user makes it: `klimapuls tokens create`."""
    done = subprocess.run(
        [sys.executable, "-m", "klimapuls", *_TOKEN_CREATE],
        env={**clean_env(), "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip().splitlines()[-1].strip()


@dataclass
class GatewayClient:
    """Posts batches through the gateway, each again until it gets 202."""

    url: str
    token: str
    events: list[dict[str, Any]]
    step: str = "start"
    posted: dict[str, set[str]] = field(default_factory=dict)
    accepted: dict[str, set[str]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    accepted_count: int = 0

    def run(self) -> None:
        for batch in chunks(self.events, _HTTP_BATCH):
            if self.stop.is_set():
                return
            step = self.step
            self.posted.setdefault(step, set()).update(e["event_id"] for e in batch)
            ids = self._post_until_accepted(batch)
            self.accepted.setdefault(step, set()).update(ids)
            self.accepted_count += len(ids)
            time.sleep(0.3)

    def _post_until_accepted(self, batch: list[dict[str, Any]]) -> list[str]:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                answer = httpx.post(
                    f"{self.url}/v1/events",
                    json=batch,
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=30,
                )
                if answer.status_code == 202:
                    ids: list[str] = answer.json()["event_ids"]
                    return ids
                # 401: a new token, until the gateway reloads credentials;
                # 503: the broker is busy. Both: send the same batch again.
                assert answer.status_code in (401, 503), answer.text
            except httpx.TransportError:
                pass  # the gateway is down: send the same batch again
            time.sleep(0.3)
        return []


@dataclass
class Kill:
    """What was sent around one service's kill, and how long up took."""

    name: str
    valid: set[str]
    bad: set[str]
    restart_s: float = 0.0
    serving_s: float | None = None


def _figures(
    kill: Kill, http: set[str], stored: Counter[str], dead: Counter[str]
) -> tuple[set[str], set[str], set[str]]:
    """Sent around one kill (Kafka and gateway), lost and doubled of them."""
    sent = kill.valid | http
    lost = {i for i in sent if stored[i] == 0} | {i for i in kill.bad if not dead[i]}
    doubled = {i for i in sent if stored[i] > 1} | {i for i in kill.bad if dead[i] > 1}
    return sent, lost, doubled


@pytest.mark.timeout(300)
def test_each_service_killed_mid_stream_is_restarted_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    up = Up(tmp_path)
    client_thread: threading.Thread | None = None
    client: GatewayClient | None = None
    try:
        up.wait_for("running;")
        state = up.state()
        db = state["database_url"]
        assert sorted(state["services"]) == sorted(SERVICES)
        count = _PER_KILL * len(SERVICES)
        events = valid_events(seed=_SEED, count=count)
        http_events = [b for _, b in valid_events(seed=_SEED, count=3000, skip=count)]
        bad = malformed(seed=_SEED, count=_BAD_PER_KILL * len(SERVICES))
        client = GatewayClient(_gateway_url(up.output), _create_token(db), http_events)
        client_thread = threading.Thread(target=client.run, daemon=True)
        client_thread.start()
        sender = Sender(state["bootstrap_servers"])
        # Status changes flow before the first kill: alerts is killed mid-work.
        targets = _target_versions(2, len(SERVICES) + 1)
        sender.send(targets[:1], topic_of)
        sender.producer.flush(30)
        _wait_rows(db, "SELECT count(*) FROM alert_observation", 60)

        kills: list[Kill] = []
        restarted_at: dict[str, Any] = {}
        for n, name in enumerate(SERVICES):
            versions = targets[1 + n : 2 + n]
            mine = events[n * _PER_KILL : (n + 1) * _PER_KILL]
            mine = versions + mine  # in flight when the service dies
            letters = bad[n * _BAD_PER_KILL : (n + 1) * _BAD_PER_KILL]
            ids = {b["event_id"] for _, b in mine}
            kill = Kill(name, ids, {k for *_, k in letters})
            half, bad_half = len(mine) // 2, len(letters) // 2
            client.step = name
            sender.send(mine[:half], topic_of)
            sender.send_raw(letters[:bad_half], topic_of)
            sender.producer.flush(30)

            pid = up.state()["services"][name]
            accepted_before = client.accepted_count
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            sender.send(mine[half:], topic_of)
            sender.send_raw(letters[bad_half:], topic_of)
            up.wait_for(f"service {name} restarted", timeout_s=60)
            kill.restart_s = time.monotonic() - killed
            restarted_at[name] = query(db, "SELECT now()")[0][0]
            assert f"service {name} stopped (killed by SIGKILL); restarting" in (
                up.output
            )
            assert up.state()["services"][name] != pid
            if name == "gateway":
                # Accepted again after the restart: it serves once more.
                deadline = time.monotonic() + 90
                while client.accepted_count <= accepted_before + _HTTP_BATCH:
                    assert time.monotonic() < deadline, "the gateway never came back"
                    time.sleep(0.2)
                kill.serving_s = time.monotonic() - killed
            kills.append(kill)
        client.step = "end"
        sender.close()
        time.sleep(3)  # a few more batches through the gateway after the last kill
        client.stop.set()
        client_thread.join(120)
        assert not client_thread.is_alive()

        valid_ids = {b["event_id"] for _, b in events + targets}
        http_ids = set().union(*client.accepted.values())
        http_posted = set().union(*client.posted.values())
        letter_ids = {k for *_, k in bad}
        stored = Counter(wait_stored(db, valid_ids | http_ids, timeout_s=150))
        dead = Counter(wait_stored(db, letter_ids, 60, count=dead_lettered))
        # Keyed by where each came from too: one row per message on the topic.
        origins = set(sender.origins.values())
        by_origin = dead_lettered(db, origins, by="origin")

        for kill in kills:
            http = client.accepted.get(kill.name, set())
            sent, lost, doubled = _figures(kill, http, stored, dead)
            serving = ""
            if kill.serving_s is not None:
                serving = f", serving again after {kill.serving_s:.1f} s"
            print(
                f"kill {kill.name}: sent {len(sent)} ({len(http)} through the "
                f"gateway; +{len(kill.bad)} malformed), "
                f"stored {sum(1 for i in sent if stored[i])}, dead-lettered "
                f"{sum(1 for i in kill.bad if dead[i])}, lost {len(lost)}, doubled "
                f"{len(doubled)}; restarted after {kill.restart_s:.1f} s{serving}"
            )

        lost = (valid_ids | http_ids) - set(stored)
        doubled = {i for i, n in stored.items() if n > 1}
        dead_lost = letter_ids - set(dead)
        dead_doubled = {i for i, n in dead.items() if n > 1}
        dead_doubled |= {o for o, n in by_origin.items() if n > 1}
        dead_lost |= origins - set(by_origin)
        # A valid event must never be dead-lettered instead of stored.
        wrongly_dead = query(
            db,
            "SELECT count(*) FROM dead_letter WHERE event_id = ANY(%s)",
            list(valid_ids | http_ids),
        )[0][0]
        print(
            f"all: sent {len(valid_ids)} on Kafka + {len(http_posted)} through the "
            f"gateway + {len(letter_ids)} malformed; acknowledged "
            f"{len(sender.acked & valid_ids)} + {len(http_ids)} + "
            f"{len(sender.acked & letter_ids)}; stored {len(stored)}, dead-lettered "
            f"{len(dead)} ({len(by_origin)} origins), lost "
            f"{len(lost) + len(dead_lost)}, doubled {len(doubled) + len(dead_doubled)}"
        )
        assert sender.acked == valid_ids | letter_ids
        assert http_ids == http_posted  # every posted batch was accepted at last
        assert (lost, doubled, dead_lost, dead_doubled) == (set(), set(), set(), set())
        assert wrongly_dead == 0
        assert set(stored) - (valid_ids | http_ids) == set()

        trips = rollup_sums(db)
        print(
            f"trips: stored {trips[0]}, rolled up hourly {trips[1]}, daily {trips[2]}"
        )
        assert trips[0] == trips[1] == trips[2] > 0  # none rolled up twice

        _check_targets_and_alerts(db, restarted_at)
        assert up.process.poll() is None
    finally:
        if client is not None:
            client.stop.set()
        up.stop()
    assert up.process.returncode == 0, up.output
    assert "stack shut down cleanly" in up.output


def _wait_rows(db: str, sql: str, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (found := query(db, sql)[0][0]) == 0:
        assert time.monotonic() < deadline, sql
        time.sleep(0.5)
    return int(found)


def _check_targets_and_alerts(db: str, restarted_at: dict[str, Any]) -> None:
    """Progress recomputed after the targets' restart; every status change
    published once and folded in by the restarted alerts service."""
    deadline = time.monotonic() + 90
    while True:
        progress = query(
            db,
            "SELECT count(*), count(DISTINCT target_id), "
            "count(*) FILTER (WHERE computed_at > %s) FROM target_progress",
            restarted_at["targets"],
        )[0]
        unpublished = query(
            db, "SELECT count(*) FROM target_status_change WHERE published_at IS NULL"
        )[0][0]
        behind = query(
            db,
            "SELECT count(*) FROM (SELECT target_id, max(id) AS newest "
            "FROM target_status_change GROUP BY target_id) c "
            "LEFT JOIN alert_observation o USING (target_id) "
            "WHERE o.change_id IS DISTINCT FROM c.newest",
        )[0][0]
        done = progress[0] > 0 and progress[2] == progress[0]
        if (done and not unpublished and not behind) or time.monotonic() > deadline:
            break
        time.sleep(1)
    changes = query(
        db,
        "SELECT count(*), count(*) FILTER (WHERE changed_at > %s) "
        "FROM target_status_change",
        restarted_at["alerts"],
    )[0]
    doubled_changes = query(
        db,
        "SELECT count(*) FROM (SELECT 1 FROM target_status_change "
        "GROUP BY target_id, changed_at HAVING count(*) > 1) d",
    )[0][0]
    doubled_alerts = query(
        db,
        "SELECT count(*) FROM (SELECT 1 FROM alert WHERE state IN "
        "('pending', 'firing', 'acknowledged') GROUP BY key HAVING count(*) > 1) d",
    )[0][0]
    observed = query(db, "SELECT count(*) FROM alert_observation")[0][0]
    print(
        f"targets: {progress[0]} progress rows ({progress[1]} targets), "
        f"{progress[2]} recomputed after the restart; status changes "
        f"{changes[0]} ({changes[1]} after the alerts' restart), unpublished "
        f"{unpublished}, doubled {doubled_changes}; alerts: {observed} targets "
        f"observed, behind {behind}, doubled open alerts {doubled_alerts}"
    )
    assert progress[0] > 0 and progress[0] == progress[1] == progress[2]
    assert changes[1] > 0  # new work for the restarted alerts service
    assert unpublished == 0
    assert behind == 0
    assert doubled_changes == 0
    assert doubled_alerts == 0
