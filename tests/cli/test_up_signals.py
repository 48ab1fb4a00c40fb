"""A stop (Ctrl-C or SIGTERM) reaches a command even when Python drops it.

Python runs a signal's handler wherever the main thread is; in a finalizer
or a weakref callback it prints what the handler raises ("Exception
ignored") and drops it. `klimapuls up` stops on Ctrl-C by raising from its
handler, so a Ctrl-C that came while the collector ran a callback (right
after the services started, most often) was lost, with a traceback on the
terminal; any other command's `KeyboardInterrupt` could be lost alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from klimapuls.cli.up import StopRequestedError, _stop_signals
from klimapuls.process import REDELIVER_S, stops_not_dropped


class _Finalized:
    """An object whose finalizer is running when the signal comes."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        time.sleep(0.5)  # the handler runs in here, and its stop is dropped


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_of_up_dropped_in_a_finalizer_comes_again(
    signum: int, capfd: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    with pytest.raises(StopRequestedError) as stopped, _stop_signals():
        _Finalized(signum)
        time.sleep(5)  # where `up` waits: the stop must come here
    assert stopped.value.signum == signum
    assert time.monotonic() - began < 3
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_ctrl_c_dropped_in_a_finalizer_comes_again(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Any command: Python's own SIGINT handler, its `KeyboardInterrupt`."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt), stops_not_dropped():
            _Finalized(signal.SIGINT)
            time.sleep(5)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - began < 3
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_stop_dropped_as_the_command_ends_is_not_sent_after_it() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _: received.append(signum))
    try:
        with _stop_signals():
            _Finalized(signal.SIGINT)
        time.sleep(REDELIVER_S * 6)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert received == []


def test_other_dropped_exceptions_go_where_they_went() -> None:
    class Failing:
        def __del__(self) -> None:
            raise ValueError("a finalizer's own fault")

    seen: list[BaseException | None] = []

    def hook(dropped: sys.UnraisableHookArgs) -> None:
        seen.append(dropped.exc_value)

    before, sys.unraisablehook = sys.unraisablehook, hook
    try:
        with stops_not_dropped():
            Failing()
        assert sys.unraisablehook is hook  # restored once the command ends
    finally:
        sys.unraisablehook = before
    assert [str(e) for e in seen] == ["a finalizer's own fault"]


def test_a_ctrl_c_while_the_command_loads_is_one_line() -> None:
    """The command's modules take most of a second to load: no traceback then."""
    command = subprocess.Popen(
        [sys.executable, "-m", "klimapuls", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.25)  # in the imports (~0.7 s), past the interpreter's start
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=30)
    assert "Traceback" not in err
    assert command.returncode == 1, (out, err)
    assert err.strip() == "aborted"
