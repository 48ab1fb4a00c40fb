"""Review: hour rows that grow by their new counts, summed again on restatement.

A refresh adds the counts above the watermark to their hour rows, and sums
an (hour, site) again only where a count restates (`restates`) or is
restated. These histories try to make the rollups drift from a rebuild:
writers committing between the statements of a refresh, restatements of
every kind, and an upgrade to migration 0019 over rollups that 0018's
refresh left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, event, text

from klimapuls.core.mobility import current_counts
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import alembic_config, in_transaction
from klimapuls.storage.grants import load_grants
from tests.helpers import rows, scalar
from tests.mobility.factories import count_event
from tests.mobility.test_review import (
    EDGES,
    NOW,
    _History,
    _rollups,
    _store,
    _stored,
    _valid,
)

HOUR = "2024-03-10T08:00:00+00:00"
QUARTER = "2024-03-10T08:15:00+00:00"


def _refresh(engine: Engine, upto: int | None = None) -> counts.RollupRefresh:
    return in_transaction(engine, lambda conn: counts.refresh_rollups(conn, upto))


def _committed(engine: Engine) -> int:
    return in_transaction(engine, counts.committed_seq)


def _equals_a_rebuild(engine: Engine) -> None:
    """A last refresh, then every rollup as a rebuild from the counts has it."""
    _refresh(engine)
    incremental = _rollups(engine)
    in_transaction(engine, counts.rebuild_rollups)
    assert _rollups(engine) == incremental


def _partitions(engine: Engine) -> None:
    """Every month the histories reach, so no writer waits to make one."""
    months = [
        edge + timedelta(days=shift) for edge in EDGES for shift in (-40, 0, 1, 30)
    ]
    in_transaction(engine, lambda conn: counts.ensure_partitions(conn, months, NOW))


@contextmanager
def _writes_between_statements(
    conn: Connection, write: Callable[[], None]
) -> Iterator[None]:
    """Run `write` (committed elsewhere) after each statement of a refresh."""

    def after(*args: Any) -> None:
        statement = args[2]
        if counts._TOUCHED in statement or counts._DELTA in statement:
            write()

    event.listen(conn, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(conn, "after_cursor_execute", after)


def _migrate(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if revision == "head":
            command.upgrade(cfg, revision)
        else:
            command.downgrade(cfg, revision)


def test_a_restatement_committed_between_the_statements_of_a_refresh_is_not_lost(
    engine: Engine,
) -> None:
    _store(engine, [count_event("s1", "bike", HOUR, 100, hours=0.25)])
    _refresh(engine)
    _store(engine, [count_event("s1", "bike", QUARTER, 20, hours=0.25)])
    upto = _committed(engine)
    # While the refresh adds the quarter, the hour's first count is restated,
    # then the restatement itself is restated, then a new count arrives.
    pending = [
        [count_event("s1", "bike", HOUR, 70, hours=0.25, revision=1)],
        [count_event("s1", "bike", HOUR, 60, hours=0.25, revision=2)],
        [count_event("s1", "bike", "2024-03-10T08:30:00+00:00", 5, hours=0.25)],
    ]

    def work(conn: Connection) -> None:
        with _writes_between_statements(
            conn, lambda: pending and _store(engine, pending.pop(0))
        ):
            counts.refresh_rollups(conn, upto)

    in_transaction(engine, work)
    assert not pending
    _equals_a_rebuild(engine)
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 85


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", range(4))
def test_hostile_writers_between_every_statement_of_a_refresh_roll_up_exactly(
    engine: Engine, seed: int
) -> None:
    _partitions(engine)
    history = _History(seed)
    rng = history.rng
    for _ in range(10):
        _store(engine, history.batch())
        if rng.random() < 0.3:
            _refresh(engine)  # under the count lock
            continue
        upto = _committed(engine)
        if rng.random() < 0.5:
            _store(engine, history.batch())  # after `upto`: the next refresh's

        def work(conn: Connection, upto: int = upto) -> None:
            def write() -> None:
                if rng.random() < 0.6:
                    _store(engine, history.batch())

            with _writes_between_statements(conn, write):
                counts.refresh_rollups(conn, upto)

        in_transaction(engine, work)

    _equals_a_rebuild(engine)
    current = current_counts(_stored(engine))
    assert scalar(engine, "SELECT coalesce(sum(trips), 0) FROM mobility_yearly") == (
        sum(c.count for c in current.values())
    )


def test_restatements_and_new_counts_in_one_transaction_between_refreshes(
    engine: Engine,
) -> None:
    first = count_event("s1", "bike", HOUR, 100, municipality_code="101")
    _store(engine, [first])
    _refresh(engine)
    # A correction into another municipality, then a late older revision, a
    # new count of another direction and a re-send of the correction.
    moved = count_event("s1", "bike", HOUR, 90, municipality_code="147", revision=1)
    late = count_event("s1", "bike", HOUR, 999, revision=0, event_id="late")
    other = count_event("s1", "bike", HOUR, 7, direction="out", delay_hours=None)
    resent = {**moved, "reported_at": "2026-01-01T00:00:00+00:00"}
    _store(engine, [moved, late], [other], [resent])
    _equals_a_rebuild(engine)
    assert rows(
        engine, "SELECT municipality_code, trips FROM mobility_hourly ORDER BY 1"
    ) == [{"municipality_code": "147", "trips": 97}]


def test_an_upgrade_sums_again_the_hours_0018_summed_past_its_watermark(
    engine: Engine,
) -> None:
    # 0018's refresh summed a touched (hour, site) from every current count,
    # also those committed after the `committed_seq` it rolled up to: the
    # quarter is in the hour row, and above the watermark.
    _store(engine, [count_event("s1", "bike", HOUR, 100, hours=0.25)])
    upto = _committed(engine)
    _store(engine, [count_event("s1", "bike", QUARTER, 20, hours=0.25)])
    in_transaction(engine, counts.rebuild_rollups)  # the hour as 0018 summed it
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE mobility_rollup_state SET watermark = :w"), {"w": upto}
        )
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 120

    _migrate(engine, "0018")
    _migrate(engine, "head")

    _refresh(engine)
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 120
    _equals_a_rebuild(engine)


def test_an_upgrade_over_restatements_not_yet_rolled_up_sums_their_hours_again(
    engine: Engine,
) -> None:
    _store(engine, [count_event("s1", "bike", HOUR, 100, hours=0.25)])
    _store(engine, [count_event("s2", "car", HOUR, 30)])
    _refresh(engine)
    _store(engine, [count_event("s1", "bike", HOUR, 70, hours=0.25, revision=1)])
    _store(
        engine,
        [
            count_event("s2", "car", HOUR, 40, revision=1, municipality_code="101"),
            count_event("s2", "car", HOUR, 50, revision=2, municipality_code="151"),
        ],
    )
    _store(engine, [count_event("s1", "bike", QUARTER, 5, hours=0.25)])

    _migrate(engine, "0018")
    _migrate(engine, "head")

    _equals_a_rebuild(engine)
    assert rows(
        engine, "SELECT site_id, trips FROM mobility_hourly ORDER BY site_id"
    ) == [{"site_id": "s1", "trips": 75}, {"site_id": "s2", "trips": 50}]


def test_refreshes_and_restatements_in_one_transaction_roll_up_exactly(
    engine: Engine,
) -> None:
    def work(conn: Connection) -> None:
        def store(events: list[dict[str, Any]]) -> None:
            counts.store_counts(conn, _valid(events), NOW, grants=load_grants(conn))

        store([count_event("s1", "bike", HOUR, 100, hours=0.25)])
        counts.refresh_rollups(conn)
        store([count_event("s1", "bike", QUARTER, 20, hours=0.25)])
        counts.refresh_rollups(conn)
        store([count_event("s1", "bike", HOUR, 70, hours=0.25, revision=1)])
        store([count_event("s1", "bike", QUARTER, 1, hours=0.25, revision=1)])
        counts.refresh_rollups(conn)
        store([count_event("s1", "bike", "2024-03-10T08:45:00+00:00", 3, hours=0.25)])
        counts.refresh_rollups(conn)

    in_transaction(engine, work)
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 74
    _equals_a_rebuild(engine)
