"""Batch handling of CO2 account events (no Kafka here).

One batch is one database transaction: valid figures are judged and stored
idempotently, and the emission series of every scope (for the boards) is
rewritten from all stored figures with the core's rules. Rejected events
come back as dead letters, and every batch with valid events, duplicates
included, announces a `SeriesChange`: the targets service then recomputes
progress. (A batch replayed after a crash announces again, so a change is
never lost between the commit and the announcement.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine

from klimapuls.core.accounts import current_figures, municipality_totals
from klimapuls.core.batch import BatchResult, Incoming, decode_batch
from klimapuls.core.messages import SeriesChange
from klimapuls.core.model import REGION_CODE
from klimapuls.core.progress import EMISSION_INDICATOR, emission_series_by_scope
from klimapuls.storage import accounts
from klimapuls.storage.db import in_transaction
from klimapuls.storage.grants import grant_cache

__all__ = ["CO2_ACCOUNT", "Co2Handler", "write_series"]

#: The event family this service consumes.
CO2_ACCOUNT = "co2_account"


def write_series(conn: Connection) -> None:
    """Rewrite E(t) of every scope from the stored figures (core rules)."""
    accounts.lock_emission_series(conn)
    figures = current_figures(accounts.co2_accounts(conn))
    for scope, series in emission_series_by_scope(municipality_totals(figures)).items():
        accounts.write_emission_series(conn, scope, series.values())


class Co2Handler:
    """Stores CO2 account figures and keeps the emission series current."""

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str = "co2"
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        self.grants = grant_cache(engine)

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Validate, store and derive, all in one transaction."""
        now = self.clock()
        result, valid = decode_batch(
            batch, (CO2_ACCOUNT,), self.name, now, BatchResult, grants=self.grants.get()
        )
        decoded = valid[CO2_ACCOUNT]
        if not decoded:
            return result

        def work(conn: Connection) -> None:
            events = [d.event for d in decoded]
            judgements = accounts.store_co2_accounts(conn, events)
            result.judged(decoded, judgements, self.name, now)
            write_series(conn)

        in_transaction(self.engine, work)
        scopes = {d.event["municipality_code"] for d in decoded} | {REGION_CODE}
        result.series_changes.append(
            SeriesChange.of(self.name, [EMISSION_INDICATOR], scopes, now)
        )
        return result
