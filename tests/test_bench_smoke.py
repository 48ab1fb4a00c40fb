"""The pipeline benchmark runs, and counts nothing lost and nothing doubled.

A small N on its own embedded stack: a smoke test of the harness, never a
timing assertion (the figures are for people; see the README).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "bench" / "pipeline.py"


@pytest.mark.timeout(300)
def test_the_pipeline_benchmark_loses_and_doubles_nothing() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--events",
            "1000",
            "--live-rate",
            "300",
            "--live-seconds",
            "1",
            "--timeout",
            "180",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["lost"], result["duplicates"]) == (0, 0)
    assert result["events"] >= 1000
    for key in ("events_per_s", "ceiling_events_per_s", "ratio", "p50_ms", "p99_ms"):
        assert result[key] is not None
    assert set(result["peak_rss_mb"]) >= {"co2", "mobility", "targets"}


BACKFILL = Path(__file__).parent.parent / "bench" / "backfill.py"


@pytest.mark.timeout(300)
def test_a_backfill_imported_twice_loses_doubles_and_adds_nothing() -> None:
    done = subprocess.run(
        [sys.executable, str(BACKFILL), "--rows", "3000", "--sites", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["rows"] == 3000
    assert result["stored"] + result["dead_lettered"] == 3000
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert result["reimport_new"] == 0
