"""Batch handling of CO2 account events (no Kafka here).

Valid figures are judged and stored idempotently, one transaction a batch;
rejected events come back as dead letters. Deriving (the emission series of
every scope for the boards, rewritten from all stored figures with the
core's rules, then a `SeriesChange` naming the municipalities whose figures
arrived, duplicates included: the targets service then recomputes progress)
runs once per window, as for every series owner (`klimapuls.deriving`). A
restarted service derives and announces at once (after the backlog it
starts on, if any), so a change is never lost between a commit and its
announcement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from klimapuls.co2 import CO2_ACCOUNT
from klimapuls.core.accounts import current_figures, municipality_totals
from klimapuls.core.batch import BatchResult
from klimapuls.core.identity import Judgement
from klimapuls.core.progress import EMISSION_INDICATOR, emission_series_by_scope
from klimapuls.deriving import SeriesOwner
from klimapuls.storage import accounts

__all__ = ["CO2_ACCOUNT", "Co2Handler", "write_series"]


def write_series(conn: Connection) -> None:
    """Rewrite E(t) of every scope from the stored figures (core rules)."""
    accounts.lock_emission_series(conn)
    figures = current_figures(accounts.co2_accounts(conn))
    for scope, series in emission_series_by_scope(municipality_totals(figures)).items():
        accounts.write_emission_series(conn, scope, series.values())


class Co2Handler(SeriesOwner[BatchResult]):
    """Stores CO2 account figures and keeps the emission series current."""

    service = "co2"
    kind = CO2_ACCOUNT
    indicators = (EMISSION_INDICATOR,)
    scope_field = "municipality_code"
    result_type = BatchResult

    def store(
        self,
        conn: Connection,
        events: list[dict[str, Any]],
        now: datetime,
        result: BatchResult,
    ) -> list[Judgement]:
        """Store account figures idempotently."""
        return accounts.store_co2_accounts(conn, events)

    def derive(self, conn: Connection, now: datetime, result: BatchResult) -> None:
        """Rewrite the emission series."""
        write_series(conn)
