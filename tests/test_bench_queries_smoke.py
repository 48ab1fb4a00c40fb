"""The query benchmark builds its data and times every query it names.

A tiny size on its own embedded PostgreSQL: a smoke test of the harness,
never a timing assertion (the figures are for people; see the README).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from klimapuls.boards import all_boards

SCRIPT = Path(__file__).parent.parent / "bench" / "queries.py"


@pytest.mark.timeout(300)
def test_the_query_benchmark_times_progress_and_every_board_query() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--sites",
            "4",
            "--days",
            "3",
            "--years",
            "3",
            "--runs",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # 4 sites x 3 days x 96 quarter hours, plus the restated day of site 0.
    assert result["count_rows"] == 4 * 3 * 96 + 96
    names = [t["query"] for t in result["timings"]]
    assert names[0] == "klimapuls progress (every target)"
    assert result["timings"][0]["rows"] >= 40  # seeded + 29 DK2020 targets
    for board in all_boards():
        for query in board.queries:
            if query.panel_title != "Sendte varsler":
                assert any(
                    n.startswith(f"{board.uid} #{query.panel_id} ") for n in names
                ), (board.uid, query.panel_title)
    assert all(t["ms"] >= 0 and t["rows"] >= 0 for t in result["timings"])


@pytest.mark.timeout(300)
def test_klimapuls_bench_queries_runs_the_query_benchmark() -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "klimapuls", "bench", "--queries"),
            *("--sites", "2", "--days", "1", "--runs", "1", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["sites"], result["days"]) == (2, 1)
    assert result["count_rows"] == 2 * 96 + 96
