"""The lock of a running `klimapuls up`: `DATA_DIR/up.lock`, holding its pid.

One `up` per data folder: a second one would start another PostgreSQL on
the same data, another broker, and overwrite the first's `stack.json`. The
first thing `up` does is take an exclusive `flock` on `up.lock` and write
its pid there; a second `up` on the same folder finds the lock held and
refuses with one line naming the running pid, before it touches anything.

The kernel releases a `flock` when its process dies, however it dies, so a
lock file left by a crashed `up` is free: the next `up` takes it over, with
a note naming the dead pid. The file is removed on a normal exit.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from klimapuls.core.errors import KlimapulsError
from klimapuls.stack.state import process_matches

__all__ = ["LOCK_FILE", "UpLock"]

LOCK_FILE = "up.lock"


def _pid_in(fd: int) -> int | None:
    """The pid written in the open lock file, if it holds one."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


@dataclass
class UpLock:
    """The held lock of this process's `up` (see the module docstring)."""

    path: Path
    fd: int

    @classmethod
    def acquire(cls, data_dir: Path, note: Callable[[str], None]) -> UpLock:
        """Take the lock of `data_dir`, or raise naming the `up` that holds it."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOCK_FILE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _pid_in(fd)
                os.close(fd)
                who = f"pid {pid}" if pid else "another process"
                stop = f"kill -TERM {pid}" if pid else "stop it"
                raise KlimapulsError(
                    f"klimapuls up already runs for {data_dir} ({who}); stop it "
                    f"first (Ctrl-C there, or {stop}), or use another --data-dir"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            # The holder removed the file between our open and our flock.
            os.close(fd)
        previous = _pid_in(fd)
        if previous and previous != os.getpid():
            gone = "" if process_matches(previous, "") else ", no longer running"
            note(f"{path} was left by an earlier up (pid {previous}{gone}); taken over")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        os.fsync(fd)
        return cls(path, fd)

    def release(self) -> None:
        """Remove the file, then let go of the lock."""
        try:
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        except FileNotFoundError:
            pass  # removed already (by hand): nothing to remove
        finally:
            os.close(self.fd)
