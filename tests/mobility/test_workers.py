"""The mobility service's worker processes run as one set (issue 12).

`run_bulk_workers` forks the workers; a worker that ends takes the set down
(the supervisor restarts it whole), and a stop reaches every worker. The
workers here only sleep or fail: what they consume is tested by the stack
and fault tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from klimapuls.bulk import run_bulk_workers
    from klimapuls.settings import Settings

    def make(settings):
        flag = os.environ.get("FAIL_ONE")
        if flag:
            try:  # exactly one worker creates the file, and fails
                os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                raise RuntimeError("a worker fails")
        time.sleep(120)

    run_bulk_workers(make, Settings(), 2)
    """
)


def _start(fail_one: Path | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if fail_one is not None:
        env["FAIL_ONE"] = str(fail_one)
    return subprocess.Popen(
        [sys.executable, "-c", _SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _workers(parent: int, timeout_s: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children = psutil.Process(parent).children()
        if len(children) == 2:
            return children
        time.sleep(0.05)
    raise AssertionError("the two workers did not start")


def test_a_stop_reaches_every_worker_and_the_set_exits_cleanly() -> None:
    service = _start()
    workers = _workers(service.pid)
    service.send_signal(signal.SIGTERM)
    assert service.wait(10) == 0
    _gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive


def _catches_sigterm(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = status.split("SigCgt:", 1)[1].split()[0]
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


def _first_worker(parent: int, timeout_s: float = 10.0) -> None:
    """Until the set forked a worker: a child running the set's script.

    Its imports start short-lived helpers too, such as `ldconfig`, and one
    caught between its fork and its exec shows the set's script as well. A
    worker comes only after the set took over SIGTERM, so a child seen
    before that is such a helper (a stop then is one before the set starts,
    which the default action rightly ends; CI once sent one there).
    """
    service = psutil.Process(parent)
    deadline = time.monotonic() + timeout_s
    while True:
        for child in service.children():
            try:
                script = any("run_bulk_workers" in part for part in child.cmdline())
            except psutil.Error:
                continue  # a helper that already ended
            if script and _catches_sigterm(parent):
                return
        assert time.monotonic() < deadline, "no worker started"
        time.sleep(0.001)


def _survivors(since: float, timeout_s: float = 5.0) -> list[psutil.Process]:
    """Workers of a set started by this test run that still live."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = []
        for p in psutil.process_iter(["cmdline", "create_time", "status"]):
            line = p.info["cmdline"] or []
            if (
                p.info["create_time"] >= since
                and p.info["status"] != psutil.STATUS_ZOMBIE
                and any("run_bulk_workers" in part for part in line)
            ):
                found.append(p)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_stop_while_the_set_starts_still_reaches_every_worker() -> None:
    for _ in range(3):
        # Given a set that has forked its first worker (maybe not the second),
        service = _start()
        try:
            _first_worker(service.pid)
            workers = [
                p for p in psutil.Process(service.pid).children() if p.is_running()
            ]
            # a stop ends the set cleanly and leaves no worker behind.
            service.send_signal(signal.SIGTERM)
            assert service.wait(10) == 0
            _gone, alive = psutil.wait_procs(workers, timeout=5)
            assert not alive
            assert not _survivors(psutil.Process().create_time()), "a worker lived on"
        finally:
            if service.poll() is None:
                service.kill()


def test_a_worker_that_ends_takes_the_set_down_for_a_restart(tmp_path: Path) -> None:
    service = _start(fail_one=tmp_path / "failed")
    code = service.wait(20)
    output = service.stdout.read().decode() if service.stdout else ""
    assert code == 1, output
    assert "a batch worker ended" in output and "stopping the others" in output


def test_a_killed_service_leaves_no_worker_behind() -> None:
    service = _start()
    workers = _workers(service.pid)
    service.kill()
    service.wait(5)
    _gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive
