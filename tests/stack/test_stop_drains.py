"""Stopping `klimapuls up` (Ctrl-C or SIGTERM) mid-stream loses nothing acknowledged.

Issue 9, defect 2: the embedded broker keeps messages in memory only, so on
a user's stop `up` drains the topics first; a restart keeps the broker's
address. Counted by event id: every event the broker acknowledged is stored.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

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
