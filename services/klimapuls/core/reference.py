"""Reference data shipped with the project: municipalities and seed targets.

The CSV and JSON files under `klimapuls/core/data/` are versioned with the
code (copied from the domain brief), so a running system never reads files
outside its own package.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["Municipality", "municipalities", "municipality_codes", "seed_target_events"]


@dataclass(frozen=True)
class Municipality:
    """One of the 29 municipalities of Region Hovedstaden."""

    code: str
    name: str


def _data(name: str) -> str:
    return resources.files("klimapuls.core").joinpath("data", name).read_text("utf-8")


@cache
def municipalities() -> tuple[Municipality, ...]:
    """The 29 municipalities, by official kommune code."""
    rows = csv.DictReader(io.StringIO(_data("municipalities.csv")))
    return tuple(Municipality(code=r["code"], name=r["name"]) for r in rows)


@cache
def municipality_codes() -> tuple[str, ...]:
    """The 29 kommune codes."""
    return tuple(m.code for m in municipalities())


def seed_target_events() -> list[dict[str, Any]]:
    """The targets of the domain brief, as `target.v1` events."""
    events: list[dict[str, Any]] = json.loads(_data("targets.json"))
    return events
