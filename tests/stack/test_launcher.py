"""Services forked from the launcher are what `python -m klimapuls.NAME` was.

`klimapuls up` forks its services from one process that has imported what
they share (`klimapuls.stack.launcher`) instead of starting a Python for
each. Given three services started so: each runs in a session of its own (a
Ctrl-C reaches `up` alone), shows its command (the next `up` finds a
leftover by it), writes to its log; a SIGKILL is reported as one; and when
the launcher itself dies, the services go with it, the supervisor says so
and starts them again from a new launcher once the old ones are gone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil
import pytest

from klimapuls.settings import Settings
from klimapuls.stack.launcher import launcher_pid, stop_launcher
from klimapuls.stack.runner import Stack
from klimapuls.stack.state import process_matches


def _until(what: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(180)
def test_launched_services_look_and_end_like_their_own_programs(
    settings: Settings,
) -> None:
    stack = Stack(settings)
    notes: list[str] = []
    pids: list[int] = []
    try:
        # targets: a faust worker, which would retitle itself (`streaming`).
        stack.start_services(["co2", "deadletter", "targets"])
        launcher = launcher_pid()
        assert launcher is not None
        for name, process in stack.processes.items():
            _until(
                lambda n=name, p=process.pid: process_matches(p, f"-m klimapuls.{n}")
            )
            assert psutil.Process(process.pid).ppid() == launcher
            assert os.getsid(process.pid) == process.pid  # a session of its own
        for name in ("co2", "deadletter"):
            log = stack.log_dir / f"{name}.log"
            _until(lambda log=log: "worker 1 of 1 reads" in log.read_text())
        targets_log = stack.log_dir / "targets.log"
        _until(lambda: "Ready" in targets_log.read_text(errors="replace"), 90)
        assert process_matches(stack.processes["targets"].pid, "-m klimapuls.targets")

        co2 = stack.processes["co2"]
        co2.kill()
        assert co2.wait(10) == -signal.SIGKILL
        assert co2.describe_exit() == "killed by SIGKILL"

        # The launcher dies: the services it forked die with it; the
        # supervisor restarts them from a new one, each only once its old
        # process is gone (faust's targets takes a while to stop).
        old = {name: p.pid for name, p in stack.processes.items()}
        os.kill(launcher, signal.SIGKILL)
        _until(lambda: _gone(old["deadletter"]))

        def restarted() -> bool:
            stack.supervise(notes.append)
            said = " ".join(notes)
            for name, pid in old.items():
                if f"service {name} stopped" in said:
                    assert _gone(pid), f"{name} said stopped, still running"
            return all(p.poll() is None for p in stack.processes.values()) and all(
                f"service {n} restarted" in said for n in stack.processes
            )

        _until(restarted, timeout_s=60)
        # Not multiprocessing's 255: the reason, which no exit code gives.
        said = " ".join(notes)
        assert "service co2 stopped (killed by SIGKILL)" in said
        for name in ("deadletter", "targets"):
            assert f"service {name} stopped (its launcher stopped)" in said
        assert launcher_pid() not in (None, launcher)
        for name, process in stack.processes.items():
            assert psutil.Process(process.pid).ppid() == launcher_pid()
            marker = f"-m klimapuls.{name}"
            _until(lambda p=process.pid, m=marker: process_matches(p, m))
        pids = [p.pid for p in stack.processes.values()]
    finally:
        stack.stop()
    assert pids and all(_gone(pid) for pid in pids)
    stop_launcher()
    assert launcher_pid() is None
    stop_launcher()  # a second stop (`up`'s after a Ctrl-C) does nothing
