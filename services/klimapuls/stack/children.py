"""How `klimapuls up` starts its child processes.

Each child runs in its own session, so a Ctrl-C in the terminal reaches
`up` alone (which then drains and stops the children in order), and asks
the kernel for SIGTERM when `up` dies, so even a `kill -9` of `up` leaves
no broker or service behind (PostgreSQL daemonizes; the next `up` finds it).
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from klimapuls.process import LIBC, die_with_parent

__all__ = ["child_setup", "describe_exit"]


def child_setup() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` (with `start_new_session=True`)."""
    return die_with_parent if LIBC is not None else None


def describe_exit(code: int) -> str:
    """`exit code 1` or `killed by SIGKILL`."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
