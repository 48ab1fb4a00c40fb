"""The checks a reviewer would run: lint, format, architecture, types, packaging."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    executable = BIN / tool
    if not executable.exists():
        found = shutil.which(tool)
        if found is None:
            pytest.fail(f"{tool} is not installed; install the [test] extra")
        executable = Path(found)
    return subprocess.run(
        [str(executable), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "services", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted() -> None:
    result = _run("ruff", "format", "--check", "services", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_is_pure_and_services_stay_apart() -> None:
    result = _run("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_under_services_ships() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT / "services").parts)
        for p in (ROOT / "services" / "klimapuls").rglob("__init__.py")
    }
    assert found | {"klimapuls.schemas", "klimapuls.grafana"} == listed
