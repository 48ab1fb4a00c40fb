"""`klimapuls bench` interrupted: its script stops what it started, whole.

The script (`bench/pipeline.py` and the others) starts a broker, a
PostgreSQL and the services on a temporary folder. `subprocess.run` killed
it 0.25 s after a Ctrl-C, mid-stop, and its PostgreSQL ran on, on a folder
nobody removes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_SLOW_TO_STOP = textwrap.dedent(
    """
    import pathlib, sys, time
    try:
        print("running", flush=True)
        time.sleep(30)
    except KeyboardInterrupt:
        time.sleep(1)  # stopping the servers it started
        pathlib.Path(sys.argv[1]).write_text("stopped")
        sys.exit(130)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_reaches_the_script_once_and_waits_for_its_stop(
    signum: int, tmp_path: Path
) -> None:
    script = tmp_path / "slow_to_stop.py"
    script.write_text(_SLOW_TO_STOP)
    stopped = tmp_path / "stopped"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from klimapuls.cli.bench import run_script; "
            f"sys.exit(run_script(Path({str(script)!r}), [{str(stopped)!r}]))",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert runner.stdout is not None
    assert runner.stdout.readline().strip() == "running"
    runner.send_signal(signum)  # a Ctrl-C at the terminal, or a SIGTERM
    runner.send_signal(signum)  # impatient: it must not cut the stop short
    assert runner.wait(timeout=30) == 130
    assert stopped.read_text() == "stopped"
