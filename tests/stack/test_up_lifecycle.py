"""`klimapuls up` from start to stop (issue 10, items 2, 3 and 11).

- an interrupted `--once` exits non-zero (130 for Ctrl-C) and stops everything;
- `klimapuls progress` in the same folder finds the running stack by itself;
- a `kill -9` of `up` takes the broker and services with it (they ask for
  SIGTERM when `up` dies); the PostgreSQL it leaves is found and reused by the
  next `up`, and SIGTERM then stops everything, nothing orphaned.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from klimapuls.stack.state import process_matches
from tests.stack.helpers import Up, clean_env


def _gone(pid: int, marker: str, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while process_matches(pid, marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _children(state: dict[str, object]) -> list[tuple[int, str]]:
    services = state["services"]
    assert isinstance(services, dict)
    pids = [(int(pid), f"klimapuls.{name}") for name, pid in services.items()]
    return [*pids, (int(state["broker_pid"]), "tansu")]  # type: ignore[call-overload]


@pytest.mark.timeout(400)
def test_up_stops_cleanly_on_signals_and_handles_what_a_crash_left(
    tmp_path: Path,
) -> None:
    postmaster = tmp_path / ".klimapuls" / "postgres" / "postmaster.pid"

    # Item 3: Ctrl-C during --once is not a success.
    once = Up(tmp_path, "--demo", "--once")
    once.wait_for("sending demo events")
    children = _children(once.state())
    once.signal(signal.SIGINT)
    assert once.wait() == 130, once.output
    assert "interrupted" in once.output and "stack shut down cleanly" in once.output
    assert all(_gone(pid, marker) for pid, marker in children)
    assert not postmaster.exists()

    # Item 11: the addresses are printed and found by other commands.
    up = Up(tmp_path)
    up.wait_for("running;")
    assert "DATABASE_URL=postgresql+psycopg://" in up.output
    assert "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:" in up.output
    progress = subprocess.run(
        [sys.executable, "-m", "klimapuls", "progress", "--json"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert progress.returncode == 0, progress.stderr
    assert "using the stack of `klimapuls up`" in progress.stderr
    assert any(r["target_id"] == "region-co2-2030" for r in json.loads(progress.stdout))

    # Item 2: kill -9 of up: its children follow; the next up handles the rest.
    children = _children(up.state())
    up.process.kill()
    up.process.wait(10)
    assert all(_gone(pid, marker) for pid, marker in children)
    assert postmaster.exists()  # PostgreSQL daemonizes: left behind

    again = Up(tmp_path)
    try:
        again.wait_for("running;")
        assert "PostgreSQL left running by an earlier up" in again.output
        children = _children(again.state())
    finally:
        again.signal(signal.SIGTERM)
    assert again.wait() == 0, again.output
    assert "stopping (SIGTERM)" in again.output
    assert "stack shut down cleanly" in again.output
    assert all(_gone(pid, marker) for pid, marker in children)
    assert not postmaster.exists()
