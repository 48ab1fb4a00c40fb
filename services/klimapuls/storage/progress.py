"""Progress inputs from the database, and the CO2 service's recomputation.

Loading is here; the math and the folding rules are in
`klimapuls.core.progress` and `klimapuls.core.targets`, shared with
`klimapuls progress --offline`, so the database and the files give the same
numbers for the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, datetime

from sqlalchemy import Connection, Engine, text

from klimapuls.core.accounts import YearValue
from klimapuls.core.batch import BatchResult
from klimapuls.core.model import Progress
from klimapuls.core.progress import (
    EMISSION_INDICATOR,
    ProgressInputs,
    SeriesKey,
    emission_series_by_scope,
)
from klimapuls.storage import repository

__all__ = [
    "ProgressKeeper",
    "evaluate_stored",
    "load_inputs",
    "recompute_emission_progress",
]


def load_inputs(conn: Connection) -> ProgressInputs:
    """Every target version, E(t) from the stored accounts, and stored series."""
    totals = repository.municipality_totals(conn)
    series: dict[SeriesKey, dict[int, YearValue]] = {
        (EMISSION_INDICATOR, scope): values
        for scope, values in emission_series_by_scope(totals).items()
    }
    for key, values in repository.indicator_series(conn).items():
        if key[0] != EMISSION_INDICATOR:
            series[key] = values
    return ProgressInputs(repository.target_versions(conn), series)


def evaluate_stored(
    conn: Connection, as_of: date, indicators: Collection[str] | None = None
) -> list[Progress]:
    """Progress of every current target (of `indicators`) at `as_of`."""
    return load_inputs(conn).evaluate(as_of, indicators)


def recompute_emission_progress(
    conn: Connection, now: datetime
) -> list[repository.StatusChange]:
    """Rewrite emission series and emission-target progress; log status changes.

    Only `co2e_total` targets: the other indicators' progress is written by the
    services that own their series.
    """
    # Two workers may finish batches at once; let one recompute at a time so
    # the status-change log sees each change once.
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.co2.progress'))")
    )
    inputs = load_inputs(conn)
    for (indicator, scope), values in inputs.series.items():
        if indicator == EMISSION_INDICATOR:
            repository.write_series(conn, scope, values.values())
    progress = inputs.evaluate(now.date(), {EMISSION_INDICATOR})
    return repository.write_progress(conn, progress, now)


class ProgressKeeper:
    """Base of the service handlers that keep target progress current.

    A subclass says how to `recompute` its derived rows and progress in a
    transaction; this class holds what every such handler needs and offers
    `refresh`, which the streaming layer's timer calls.
    """

    #: The service name, used as `rejected_by` on dead letters.
    service = ""
    #: What `refresh` returns (services may extend `BatchResult`).
    result_type: type[BatchResult] = BatchResult

    def __init__(
        self, engine: Engine, clock: Callable[[], datetime], name: str | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name or self.service
        # Recompute on the first batch even if it stores nothing new, so a
        # restarted service brings progress up to date at once.
        self._recomputed_once = False

    def recompute(
        self, conn: Connection, now: datetime
    ) -> list[repository.StatusChange]:
        """Rewrite derived rows and progress; return the status changes."""
        raise NotImplementedError

    def refresh(self) -> BatchResult:
        """Recompute progress as of now, without new events (a timer calls it)."""
        now = self.clock()
        changes = repository.in_transaction(
            self.engine, lambda conn: self.recompute(conn, now)
        )
        return self.result_type(status_changes=changes)
