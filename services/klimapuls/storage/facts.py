"""The facts target progress is computed from, read from their owners' tables.

Read-only: each table here has its own writer (the README's ownership
table); the targets service and `klimapuls progress` read them through this
one function and hand them to `klimapuls.core.progress.evaluate_all`, as
`progress --offline` does with facts folded from files.
"""

from __future__ import annotations

from sqlalchemy import Connection

from klimapuls.core.progress import Facts
from klimapuls.storage.accounts import co2_accounts
from klimapuls.storage.fleet import fleet_snapshots
from klimapuls.storage.mobility import yearly_trips
from klimapuls.storage.targets import target_versions

__all__ = ["load_facts"]


def load_facts(conn: Connection) -> Facts:
    """Every target version, account figure, fleet snapshot and yearly trip row."""
    return Facts(
        targets=tuple(target_versions(conn)),
        accounts=tuple(co2_accounts(conn)),
        fleet=tuple(fleet_snapshots(conn)),
        trips=tuple(yearly_trips(conn)),
    )
