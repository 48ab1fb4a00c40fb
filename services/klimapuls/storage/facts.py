"""The facts target progress is computed from, read from their owners' tables.

Read-only: each table here has its own writer (the README's ownership
table); the targets service and `klimapuls progress` read them through this
one function and hand them to `klimapuls.core.progress.evaluate_all`, as
`progress --offline` does with facts folded from files.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Connection

from klimapuls.core.knowledge import known_by
from klimapuls.core.progress import Facts, MobilityYears
from klimapuls.storage.accounts import co2_accounts
from klimapuls.storage.fleet import fleet_snapshots
from klimapuls.storage.mobility import (
    bike_site_years,
    restated_count_rows,
    site_years_known,
    yearly_trips,
)
from klimapuls.storage.targets import target_versions

__all__ = ["load_facts"]


def load_facts(
    conn: Connection, known_on: Iterable[date] = (), *, audit: bool = True
) -> Facts:
    """Every target version, account figure, fleet snapshot and yearly trip row.

    Trips come from the rollups (the current counts); for each date in
    `known_on` the trips known then are aggregated from the counts too, so
    `klimapuls.core.knowledge.known_on` can cut the facts to that date.
    `audit=False` leaves out `restated_counts`, which only the restatement
    audit reads (`klimapuls.core.restatements`; progress never does), so a
    caller that only evaluates progress does not read them.
    """
    return Facts(
        targets=tuple(target_versions(conn)),
        accounts=tuple(co2_accounts(conn)),
        fleet=tuple(fleet_snapshots(conn)),
        trips=tuple(yearly_trips(conn)),
        bike_sites=tuple(bike_site_years(conn)),
        restated_counts=tuple(restated_count_rows(conn)) if audit else (),
        known_trips={
            day: MobilityYears.of_sites(site_years_known(conn, known_by(day)))
            for day in sorted(set(known_on))
        },
    )
