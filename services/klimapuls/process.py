"""Process lifetime: a child that dies with its parent (Linux), a stop not lost.

Shared by `klimapuls up` (its services, started with `subprocess`) and the
batch workers a service forks: a `kill -9` of the parent leaves no child
behind. Every command of the CLI keeps its Ctrl-C (`stops_not_dropped`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "LIBC",
    "REDELIVER_S",
    "die_with",
    "die_with_parent",
    "no_interruptions",
    "stops_not_dropped",
]

_PR_SET_PDEATHSIG = 1

# Loaded at import, in the parent: a child must not load libraries between
# fork and exec.
LIBC = (
    ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if sys.platform.startswith("linux")
    else None
)


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when this process's parent dies."""
    if LIBC is not None:
        LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with(parent: int) -> None:
    """In a child just forked from `parent`: die with it, or now if it is gone.

    A parent that died between the fork and the request is never signalled
    for: the child (reparented) would live on.
    """
    die_with_parent()
    if os.getppid() != parent:
        os._exit(1)


#: How soon a stop that Python dropped is sent again (`stops_not_dropped`).
REDELIVER_S = 0.05


@contextmanager
def stops_not_dropped() -> Iterator[None]:
    """A Ctrl-C (or a stop raised from a signal handler) that Python drops comes again.

    Python runs a signal's handler wherever the main thread is. When that is
    a finalizer or a weakref callback (the garbage collector's, at any
    moment), what the handler raises (`KeyboardInterrupt`, or `klimapuls
    up`'s stop) is printed as "Exception ignored", with a traceback, and
    dropped: the command runs on. Such a stop is sent again a moment later,
    when the main thread is back in ordinary code, and nothing is printed.
    The signal is the exception's `signum` if it has one, else SIGINT.
    Other dropped exceptions go to the hook there was before.
    """
    previous_hook = sys.unraisablehook
    active = True

    def send_again(signum: int) -> None:
        if active:  # not once the command has ended
            os.kill(os.getpid(), signum)

    def dropped(unraisable: sys.UnraisableHookArgs) -> None:
        stop = unraisable.exc_value
        if not isinstance(stop, KeyboardInterrupt):
            previous_hook(unraisable)
            return
        signum = getattr(stop, "signum", signal.SIGINT)
        again = threading.Timer(REDELIVER_S, send_again, (signum,))
        again.daemon = True
        again.start()

    sys.unraisablehook = dropped
    try:
        yield
    finally:
        active = False
        sys.unraisablehook = previous_hook


@contextmanager
def no_interruptions() -> Iterator[None]:
    """Ctrl-C ignored while a bounded cleanup runs (in the main thread).

    For the servers a run started: a second Ctrl-C that cut their stop
    short would leave a PostgreSQL running on a folder nobody removes.
    """
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
