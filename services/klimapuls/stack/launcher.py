"""Service processes forked from one launcher that has imported what they share.

`klimapuls up` used to start each service as `python -m klimapuls.NAME`:
every one of them then imported the same libraries (SQLAlchemy, psycopg,
pydantic, aiokafka, the domain core) on the same two cores, ~5.5 CPU-s
before the first event was stored. The launcher is multiprocessing's fork
server: one process that imports `PRELOAD` once and forks each service from
itself, so a service imports only what is its own (~2 CPU-s for all six,
measured with the bench's services).

A launched service runs as `python -m klimapuls.NAME` in a session of its
own did, where `up` depends on it (`_service_main`): its own session (a
Ctrl-C reaches `up` alone), SIGTERM when the launcher dies, exactly the
environment given, its log file as stdout and stderr, exit codes, atexit
handlers, that command line in `ps`. It runs the shared code the launcher
imported when it started (a restart after an upgrade does not see the new
code until `up` restarts). The launcher exits when `up` does (even on a
`kill -9`: the services do not keep it alive, see `_service_main`), and
the services with it.

multiprocessing imports the program that starts the launcher (`__main__`)
in the launcher: a program that starts services this way needs the
`if __name__ == "__main__":` guard (`klimapuls up` and `bench/` have it).
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Mapping
from multiprocessing import forkserver, resource_tracker
from multiprocessing.process import BaseProcess
from pathlib import Path

import psutil
from setproctitle import setproctitle

from klimapuls.process import die_with
from klimapuls.stack.children import describe_exit

__all__ = [
    "PRELOAD",
    "ServiceProcess",
    "ensure_launcher",
    "launch",
    "launcher_pid",
    "stop_launcher",
]

#: What the launcher imports once for every service (`__main__`: the program
#: that runs `up`, imported once here instead of in every child).
PRELOAD: tuple[str, ...] = (
    "__main__",
    # Unpickling the service's entry point then imports nothing: a child is
    # in `up`'s process group until its `setsid`, keep that short.
    "klimapuls.stack.launcher",
    "klimapuls.settings",
    "klimapuls.bulk",
    "klimapuls.deriving",
    "klimapuls.core.batch",
    "klimapuls.storage.db",
    "sqlalchemy",
    "psycopg",
    "aiokafka",
)

_CONTEXT = multiprocessing.get_context("forkserver")
_HELD_BY_THE_LAUNCHER = {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1}
#: What multiprocessing reports for a child whose launcher died under it.
_LAUNCHER_GONE = 255


def _running(pid: int) -> bool:
    """Whether `pid` runs (no longer our launcher's child: not waited for)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class ServiceProcess:
    """A launched service, with the `subprocess.Popen` calls the supervisor makes."""

    def __init__(self, process: BaseProcess, command: str, launcher: int) -> None:
        self._process = process
        self._command = command
        self._launcher = launcher
        self.pid: int = process.pid or 0
        self.returncode: int | None = None
        #: Whether it ended because its launcher died (it has no exit code
        #: of its own then: not this process's child, it was never waited for).
        self.orphaned = False

    def describe_exit(self) -> str:
        """How it ended, for the supervisor's note (once `poll` gave a code)."""
        if self.orphaned:
            return "its launcher stopped"
        return describe_exit(self.returncode or 0)

    def poll(self) -> int | None:
        """The exit code (negative: the signal that killed it), or None if running.

        A launcher that dies takes its services with it (SIGTERM), but they
        take a moment to stop, and multiprocessing reports each as exited
        (255) at once, as its channel to the launcher closes: until the
        process is gone it is still running, and a restart would overlap it.
        """
        if self.returncode is None:
            code = self._process.exitcode
            if code is not None and (code != _LAUNCHER_GONE or not _running(self.pid)):
                self.returncode = code
                # 255 is also a code a program may exit with itself.
                self.orphaned = code == _LAUNCHER_GONE and not _running(self._launcher)
                self._process.close()  # its channel to the launcher
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; `subprocess.TimeoutExpired` after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.returncode is None:
            self._process.join(timeout)
        while (code := self.poll()) is None:  # an orphan of a dead launcher
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self._command, timeout or 0.0)
            time.sleep(0.05)
        return code

    def send_signal(self, sig: int) -> None:
        """Send `sig`, unless the process has been seen to exit."""
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)


def ensure_launcher() -> None:
    """Start the launcher unless it runs; it imports while the caller goes on.

    It is born with SIGINT, SIGTERM and SIGUSR1 blocked (a mask survives
    exec; multiprocessing's resource tracker is started the same way): a
    stop sent to `up`'s process group (a terminal's Ctrl-C, `kill -TERM
    -PGID`) must reach `up`, which drains before stopping the services in
    order, not kill the launcher and with it every service at once. It
    exits when `up` does. Each service sets its own mask (`_service_main`);
    a signal sent to it before then stays pending instead of being lost, so
    a `close_intake` that reaches the gateway before its handler is
    installed does not kill it.
    """
    _CONTEXT.set_forkserver_preload(list(PRELOAD))
    # First, on its own: starting the tracker unblocks SIGINT and SIGTERM
    # in the calling thread (it does not restore the mask it found).
    resource_tracker.ensure_running()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_BY_THE_LAUNCHER)
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def stop_launcher() -> None:
    """Stop the launcher and wait for it to exit.

    It would exit on its own once this process has; `up` waits for it, so
    that nothing it started outlives it. (multiprocessing's tracker exits
    once the last process holding its pipe has; a mobility worker holds it
    too, so waiting for it here could wait for a stuck worker.)
    """
    server = forkserver._forkserver
    if getattr(server, "_forkserver_alive_fd", None) is None:
        return  # not started, or a stop cut short: it exits on its own
    stop = getattr(server, "_stop", None)  # CPython's own tests call it
    if stop is not None:
        stop()


def launcher_pid() -> int | None:
    """The launcher's process id, once started (for the bench's accounting)."""
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return int(pid) if pid is not None else None


def launch(
    name: str, env: Mapping[str, str], log: Path, blocked: Collection[int] = ()
) -> ServiceProcess:
    """Fork `python -m klimapuls.NAME` from the launcher; `blocked`: its signal mask."""
    ensure_launcher()
    launcher = launcher_pid()
    if launcher is None:  # ensure_launcher has just started it
        raise RuntimeError("the services' launcher did not start")
    log.touch()  # there once launched, as a file `subprocess` was given
    command = f"{sys.executable} -m klimapuls.{name}"
    process = _CONTEXT.Process(
        target=_service_main,
        args=(name, dict(env), str(log), tuple(blocked), command, launcher),
        name=f"klimapuls.{name}",
        # A supervisor that exits without stopping its services (a bug, a
        # test that forgot) terminates them instead of waiting for them.
        daemon=True,
    )
    process.start()
    return ServiceProcess(process, command, launcher)


def _service_main(
    name: str,
    env: dict[str, str],
    log: str,
    blocked: tuple[int, ...],
    command: str,
    launcher: int,
) -> None:
    """In the forked child: become `python -m klimapuls.NAME`, then run it."""
    # The launcher lives as long as a client holds this pipe's end: a
    # service must not, or a `kill -9` of `up` would leave the launcher and
    # the services (which die with it) running.
    server = forkserver._forkserver
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        os.close(alive)
        server._forkserver_alive_fd = None  # type: ignore[attr-defined]
    os.setsid()
    die_with(launcher)
    # A Ctrl-C that reached `up`'s process group before the `setsid` was
    # meant for `up` (nobody sends a service SIGINT): dropped, instead of
    # interrupting the service once unblocked.
    if signal.SIGINT in signal.sigpending():
        signal.sigtimedwait({signal.SIGINT}, 0)
    signal.pthread_sigmask(signal.SIG_SETMASK, set(blocked))
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        # Its folder gone (the run that asked for it stopped meanwhile) or
        # not writable: one line where the service would have logged.
        os.write(2, f"klimapuls.{name}: cannot open {log}: {exc.strerror}\n".encode())
        os._exit(1)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # Shown in `ps` (and to `klimapuls up`'s leftover check); before the
    # environment changes, as the title is written over it.
    setproctitle(command)
    os.environ.clear()
    os.environ.update(env)
    # What the launcher imported lives as long as the service: out of the
    # collector's way, and its pages stay shared with the launcher.
    gc.freeze()
    # A service may fork workers of its own (mobility): it is no daemon.
    multiprocessing.current_process().daemon = False
    sys.argv = [sys.executable]  # argv[0] becomes the module's path
    try:
        runpy.run_module(f"klimapuls.{name}", run_name="__main__", alter_sys=True)
    finally:
        # As at the end of `python -m`: multiprocessing ends its children
        # with `os._exit`, which skips them.
        atexit._run_exitfuncs()
