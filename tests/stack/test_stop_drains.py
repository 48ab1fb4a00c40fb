"""Stopping `klimapuls up` (Ctrl-C or SIGTERM) mid-stream loses nothing acknowledged.

Issue 9, defect 2: the embedded broker keeps messages in memory only, so on
a user's stop `up` drains the topics first; a restart keeps the broker's
address. Counted by event id: every event the broker acknowledged is stored.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from klimapuls.stack import EmbeddedPostgres
from tests.stack.helpers import (
    Sender,
    Up,
    chunks,
    stored,
    topic_of,
    valid_events,
)


def _stream_then_stop(up: Up, signum: int, skip: int) -> set[str]:
    """Stream events into `up`, stop it with `signum` while it still has a backlog."""
    state = up.state()
    sender = Sender(state["bootstrap_servers"])
    events = valid_events(seed=2, count=4000, skip=skip)
    streaming = threading.Event()

    def stream() -> None:
        for part in chunks(events, 200):
            sender.send(part, topic_of)
            streaming.set()
            time.sleep(0.05)

    thread = threading.Thread(target=stream)
    thread.start()
    streaming.wait(10)
    time.sleep(1.0)  # mid-stream: the services are still working through it
    thread.join()
    sender.close()
    up.signal(signum)
    assert up.wait() == 0, up.output
    output = up.output
    assert f"stopping ({signal.Signals(signum).name})" in output
    assert "drained in" in output, output
    assert "stack shut down cleanly" in output
    return sender.acked


def _stored_after_stop(folder: Path, acked: set[str]) -> dict[str, int]:
    database = EmbeddedPostgres(folder / ".klimapuls" / "postgres")
    url = database.start()
    try:
        return stored(url, acked)
    finally:
        database.stop()


@pytest.mark.timeout(400)
def test_a_stop_drains_the_topics_and_the_broker_keeps_its_address(
    tmp_path: Path,
) -> None:
    addresses = []
    for round_, signum in enumerate((signal.SIGINT, signal.SIGTERM)):
        up = Up(tmp_path)
        try:
            up.wait_for("running;")
            addresses.append(up.state()["bootstrap_servers"])
            started = time.monotonic()
            acked = _stream_then_stop(up, signum, skip=round_ * 4000)
            stop_s = time.monotonic() - started
        finally:
            up.stop()
        counts = _stored_after_stop(tmp_path, acked)
        lost = acked - set(counts)
        doubled = {i for i, n in counts.items() if n > 1}
        print(
            f"{signal.Signals(signum).name}: acknowledged {len(acked)}, stored "
            f"{len(counts)}, lost {len(lost)}, doubled {len(doubled)} "
            f"(stream + drain + stop {stop_s:.1f} s)"
        )
        assert len(acked) == 4000
        assert not lost
        assert not doubled
    assert addresses[0] == addresses[1]


@pytest.mark.timeout(300)
def test_while_up_drains_the_gateway_answers_503_and_progress_names_topics(
    tmp_path: Path,
) -> None:
    up = Up(tmp_path)
    paused: int | None = None
    try:
        up.wait_for("running;")
        state = up.state()
        found = re.search(r"gateway at (http://\S+)/v1/events", up.output)
        assert found, up.output
        gateway = found.group(1)
        _wait_healthy(gateway)
        # A backlog that cannot drain yet: the mobility service is paused.
        paused = state["services"]["mobility"]
        os.kill(paused, signal.SIGSTOP)
        counts = [
            e for e in valid_events(seed=4, count=3000) if e[0] == "mobility_count"
        ]
        sender = Sender(state["bootstrap_servers"])
        sender.send(counts, topic_of)
        sender.close()

        up.signal(signal.SIGTERM)
        up.wait_for("draining: ", timeout_s=60)
        answers = [
            httpx.post(f"{gateway}/v1/events", json={"schema": "x"}, timeout=10),
            httpx.get(f"{gateway}/v1/health", timeout=10),
        ]
        os.kill(paused, signal.SIGCONT)
        paused = None
        code = up.wait()
    finally:
        if paused is not None:
            os.kill(paused, signal.SIGCONT)
        up.stop()
    output = up.output
    progress = [line for line in output.splitlines() if line.startswith("draining: ")]
    print(f"gateway while draining: {[a.status_code for a in answers]}; {progress[0]}")
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "30"
        assert answer.json()["error"] == "draining"
    assert "the gateway answers 503 with Retry-After meanwhile" in output
    # A notice of the last derive may be on its way too (series-change).
    assert re.search(
        r"draining: [\d,]+ events still to process \(mobility-count [\d,]+"
        r"(, [a-z-]+ [\d,]+)*\); \d+ s of at most 60 s",
        progress[0],
    ), progress
    assert "drained in" in output, output
    assert code == 0, output
    assert len(sender.acked) == len(counts)
    stored_counts = _stored_after_stop(tmp_path, sender.acked)
    assert set(stored_counts) == sender.acked
    assert all(n == 1 for n in stored_counts.values())


def _wait_healthy(gateway: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{gateway}/v1/health", timeout=10).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        assert time.monotonic() < deadline, "the gateway never answered 200"
        time.sleep(0.3)
