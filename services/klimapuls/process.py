"""Process lifetime: a child that dies with its parent (Linux).

Shared by `klimapuls up` (its services, started with `subprocess`) and the
batch workers a service forks: a `kill -9` of the parent leaves no child
behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["LIBC", "die_with", "die_with_parent"]

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
