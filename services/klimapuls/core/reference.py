"""Reference data shipped with the project: scopes and seed targets.

The CSV and JSON files under `klimapuls/core/data/` are versioned with the
code (copied from the domain brief), so a running system never reads files
outside its own package:

- `municipalities.csv`: the 29 municipalities of Region Hovedstaden with
  their official kommune codes;
- `scopes.csv`: the scopes that are not municipalities (the region `1084`,
  Denmark `DK`, the operator `movia`);
- `targets.json`: every target of the domain brief as `target.v1` events;
- `vip_climate_projects.csv`, `vip_infrastructure_status.csv`: initiatives
  and tovholdere (read by `klimapuls.core.initiatives`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "SCOPE_KINDS",
    "Municipality",
    "Scope",
    "municipalities",
    "municipality_codes",
    "scope_codes",
    "scopes",
    "seed_target_events",
]

#: What a scope is: whose targets and series it holds.
SCOPE_KINDS = ("municipality", "region", "country", "operator")


@dataclass(frozen=True)
class Municipality:
    """One of the 29 municipalities of Region Hovedstaden."""

    code: str
    name: str


@dataclass(frozen=True)
class Scope:
    """Whose target it is: a municipality, the region, Denmark or an operator."""

    code: str
    name: str
    kind: str


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


@cache
def scopes() -> tuple[Scope, ...]:
    """Every scope a target may have: the 29 municipalities, then the others."""
    rows = csv.DictReader(io.StringIO(_data("scopes.csv")))
    others = tuple(Scope(r["code"], r["name"], r["kind"]) for r in rows)
    return (
        tuple(Scope(m.code, m.name, "municipality") for m in municipalities()) + others
    )


@cache
def scope_codes() -> tuple[str, ...]:
    """The codes of `scopes()`."""
    return tuple(s.code for s in scopes())


def seed_target_events() -> list[dict[str, Any]]:
    """The targets of the domain brief, as `target.v1` events."""
    events: list[dict[str, Any]] = json.loads(_data("targets.json"))
    return events
