"""`klimapuls up` supervises: a service killed with SIGKILL is restarted, nothing lost.

Issue 9, defect 1: one dead service used to take the whole stack down.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.stack.helpers import (
    Sender,
    Up,
    rollup_sums,
    topic_of,
    valid_events,
    wait_stored,
)


@pytest.mark.timeout(300)
def test_a_killed_service_is_restarted_and_the_stream_is_stored_completely(
    tmp_path: Path,
) -> None:
    up = Up(tmp_path)
    try:
        up.wait_for("running;")
        state = up.state()
        events = valid_events(seed=9, count=3000)
        ids = {body["event_id"] for _, body in events}
        sender = Sender(state["bootstrap_servers"])
        sender.send(events[:1500], topic_of)
        sender.producer.flush(30)

        killed = time.monotonic()
        os.kill(state["services"]["mobility"], signal.SIGKILL)
        sender.send(events[1500:], topic_of)
        sender.close()
        up.wait_for("service mobility restarted", timeout_s=60)
        restart_s = time.monotonic() - killed
        assert "service mobility stopped (killed by SIGKILL); restarting" in up.output

        counts = wait_stored(state["database_url"], ids, timeout_s=120)
        lost = ids - set(counts)
        doubled = {i for i, n in counts.items() if n > 1}
        print(
            f"sent {len(ids)}, acknowledged {len(sender.acked)}, stored "
            f"{len(counts)}, lost {len(lost)}, doubled {len(doubled)}; "
            f"restart after {restart_s:.1f} s"
        )
        assert sender.acked == ids
        assert not lost
        assert not doubled
        trips = rollup_sums(state["database_url"])
        assert trips[0] == trips[1] == trips[2] > 0  # none rolled up twice
        # Still supervised and running: only the user stops the stack.
        assert up.process.poll() is None
    finally:
        up.stop()
    assert up.process.returncode == 0, up.output
    assert "stack shut down cleanly" in up.output


def _postmaster(folder: Path) -> int:
    pid_file = folder / ".klimapuls" / "postgres" / "postmaster.pid"
    return int(pid_file.read_text().splitlines()[0])


@pytest.mark.timeout(300)
def test_a_killed_embedded_postgres_is_restarted_and_the_services_recover(
    tmp_path: Path,
) -> None:
    up = Up(tmp_path)
    try:
        up.wait_for("running;")
        state = up.state()
        events = valid_events(seed=11, count=3000)
        ids = {body["event_id"] for _, body in events}
        sender = Sender(state["bootstrap_servers"])
        sender.send(events[:1500], topic_of)
        sender.producer.flush(30)

        killed = time.monotonic()
        postmaster = _postmaster(tmp_path)
        os.kill(postmaster, signal.SIGKILL)
        sender.send(events[1500:], topic_of)
        sender.close()
        up.wait_for("embedded PostgreSQL restarted", timeout_s=60)
        restart_s = time.monotonic() - killed
        assert "embedded PostgreSQL stopped; restarting in" in up.output
        assert _postmaster(tmp_path) != postmaster
        assert up.state()["database_url"] == state["database_url"]

        counts = wait_stored(state["database_url"], ids, timeout_s=150)
        lost = ids - set(counts)
        doubled = {i for i, n in counts.items() if n > 1}
        trips = rollup_sums(state["database_url"])
        print(
            f"postgres killed under up: sent {len(ids)}, acknowledged "
            f"{len(sender.acked)}, stored {len(counts)}, dead-lettered 0, lost "
            f"{len(lost)}, doubled {len(doubled)}; restarted after "
            f"{restart_s:.1f} s; trips stored/hourly/daily {trips}"
        )
        assert sender.acked == ids
        assert not lost
        assert not doubled
        assert trips[0] == trips[1] == trips[2] > 0
        assert up.process.poll() is None
    finally:
        up.stop()
    assert up.process.returncode == 0, up.output
    assert "stack shut down cleanly" in up.output
