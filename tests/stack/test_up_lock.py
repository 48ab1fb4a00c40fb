"""One `klimapuls up` per data folder: `DATA_DIR/up.lock` (issue 10, item 2).

A second `up` on the folder of a running one refuses in one line naming the
running pid and leaves the first's `stack.json` alone; a lock left by an
`up` that died is taken over with a note.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from klimapuls.core.errors import KlimapulsError
from klimapuls.stack.lock import LOCK_FILE, UpLock
from tests.stack.helpers import Up, clean_env


@pytest.mark.timeout(300)
def test_a_second_up_on_the_same_folder_refuses_and_leaves_the_first_alone(
    tmp_path: Path,
) -> None:
    first = Up(tmp_path)
    try:
        first.wait_for("running;")
        data = tmp_path / ".klimapuls"
        state_before = (data / "stack.json").read_bytes()
        assert (data / LOCK_FILE).read_text().strip() == str(first.process.pid)

        second = subprocess.run(
            [sys.executable, "-m", "klimapuls", "up"],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1, second.stdout + second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"already runs for .klimapuls (pid {first.process.pid})" in lines[0]
        assert "Traceback" not in second.stdout + second.stderr
        assert (data / "stack.json").read_bytes() == state_before
        assert first.process.poll() is None
    finally:
        first.stop()
    assert "stack shut down cleanly" in first.output
    assert not (tmp_path / ".klimapuls" / LOCK_FILE).exists()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path: Path) -> None:
    dead = _dead_pid()
    (tmp_path / LOCK_FILE).write_text(f"{dead}\n")
    notes: list[str] = []
    lock = UpLock.acquire(tmp_path, notes.append)
    try:
        assert notes == [
            f"{tmp_path / LOCK_FILE} was left by an earlier up "
            f"(pid {dead}, no longer running); taken over"
        ]
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_held_by_a_live_process_is_refused_naming_its_pid(
    tmp_path: Path,
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from klimapuls.stack.lock import UpLock
                UpLock.acquire(Path({str(tmp_path)!r}), print)
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(KlimapulsError, match=f"pid {holder.pid}"):
            UpLock.acquire(tmp_path, print)
        assert (tmp_path / LOCK_FILE).read_text() == f"{holder.pid}\n"
    finally:
        holder.kill()
        holder.wait()
    # Its holder is gone (SIGKILL): the lock is free again.
    notes: list[str] = []
    UpLock.acquire(tmp_path, notes.append).release()
    assert f"pid {holder.pid}, no longer running" in notes[0]
