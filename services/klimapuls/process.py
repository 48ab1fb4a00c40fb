"""Process lifetime: a child that dies with its parent (Linux).

Shared by `klimapuls up` (its services, started with `subprocess`) and the
batch workers a service forks: a `kill -9` of the parent leaves no child
behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys

__all__ = ["LIBC", "die_with_parent"]

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
