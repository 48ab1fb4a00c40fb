"""Count storage and rollups against a real PostgreSQL (no broker needed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.core.identity import Verdict
from klimapuls.core.validation import validate_event
from klimapuls.storage import grants
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import in_transaction
from tests.helpers import rows, scalar
from tests.mobility.factories import count_event

ROLLUPS = ("mobility_hourly", "mobility_daily", "mobility_yearly")


NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _store(engine: Engine, events: list[dict[str, Any]]) -> counts.StoredCounts:
    valid = [validate_event("mobility_count", e, now=NOW) for e in events]
    return in_transaction(
        engine,
        lambda conn: counts.store_counts(
            conn, valid, NOW, grants=grants.load_grants(conn)
        ),
    )


def _refresh(engine: Engine) -> counts.RollupRefresh:
    return in_transaction(engine, counts.refresh_rollups)


def _rollups(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    return {
        table: rows(
            engine,
            f"SELECT bucket, municipality_code, mode, trips, counts FROM {table} "
            "ORDER BY bucket, municipality_code, mode, trips",
        )
        for table in ROLLUPS
    }


#: The rollups kept from the deltas of the hours, in a stable order.
_FROM_HOURS = (
    "SELECT * FROM mobility_site_monthly "
    "ORDER BY bucket, site_id, municipality_code, mode",
    "SELECT * FROM mobility_mode_hourly ORDER BY bucket, municipality_code, mode",
    "SELECT * FROM mobility_region_hourly ORDER BY bucket, mode",
)


_FEEDS = (
    "SELECT * FROM mobility_feed ORDER BY site_id",
    "SELECT * FROM mobility_receipt ORDER BY minute, synthetic",
)


def test_a_refresh_with_nothing_new_changes_nothing(engine: Engine) -> None:
    _store(engine, [count_event("s1", "bike", "2024-05-01T06:00:00+00:00", 10)])
    first = _refresh(engine)
    assert (first.hours, first.days, first.years) == (1, 1, 1)
    before = _rollups(engine)
    stamp = scalar(engine, "SELECT refreshed_at FROM mobility_rollup_state")

    again = _refresh(engine)

    assert (again.hours, again.days, again.years) == (0, 0, 0)
    assert again.watermark_from == again.watermark_to == first.watermark_to
    assert _rollups(engine) == before
    assert scalar(engine, "SELECT refreshed_at FROM mobility_rollup_state") == stamp


def test_partitions_are_created_per_month_when_counts_arrive(engine: Engine) -> None:
    stored = _store(
        engine,
        [
            count_event("s1", "car", "2024-01-31T23:30:00+00:00", 1),
            count_event("s1", "car", "2024-02-01T00:30:00+00:00", 1),
            count_event("s1", "car", "2024-02-03T00:30:00+00:00", 1),
        ],
    )
    assert stored.partitions == ["mobility_count_2024_01", "mobility_count_2024_02"]
    assert (
        _store(
            engine, [count_event("s2", "car", "2024-02-09T00:30:00+00:00", 1)]
        ).partitions
        == []
    )
    assert scalar(engine, "SELECT count(*) FROM mobility_count_2024_02") == 3


def test_days_and_years_are_danish_local_time(engine: Engine) -> None:
    # 23:30 UTC on New Year's Eve is 00:30 on 1 January in Copenhagen.
    _store(engine, [count_event("s1", "bike", "2023-12-31T23:30:00+00:00", 7)])
    _refresh(engine)
    assert rows(
        engine,
        "SELECT to_char(bucket AT TIME ZONE 'Europe/Copenhagen', "
        "'YYYY-MM-DD') AS day, month_mask FROM mobility_daily",
    ) == [{"day": "2024-01-01", "month_mask": 1}]
    yearly = counts.yearly_trips  # the reader the service uses
    assert [(y.year, y.trips) for y in in_transaction(engine, yearly)] == [(2024, 7)]


def test_a_late_older_revision_is_kept_but_does_not_count(engine: Engine) -> None:
    start = "2024-03-10T08:00:00+00:00"
    _store(engine, [count_event("s1", "bike", start, 100, revision=2)])
    late = count_event(
        "s1", "bike", start, 999, revision=1, reported_at="2025-04-01T00:00:00+00:00"
    )
    stored = _store(engine, [late])
    assert (stored.added, stored.restated) == (1, 0)
    _refresh(engine)
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 100
    assert rows(
        engine, "SELECT revision, is_current FROM mobility_count ORDER BY revision"
    ) == [
        {"revision": 1, "is_current": False},
        {"revision": 2, "is_current": True},
    ]


def test_a_correction_into_another_municipality_moves_the_trips(
    engine: Engine,
) -> None:
    start = "2024-03-10T08:00:00+00:00"
    _store(engine, [count_event("s1", "bike", start, 100, municipality_code="101")])
    _refresh(engine)
    _store(
        engine,
        [count_event("s1", "bike", start, 90, municipality_code="147", revision=1)],
    )
    _refresh(engine)
    assert rows(engine, "SELECT municipality_code, trips FROM mobility_yearly") == [
        {"municipality_code": "147", "trips": 90}
    ]


def test_the_same_event_twice_is_stored_once_and_reused_ids_are_reported(
    engine: Engine,
) -> None:
    event = count_event("s1", "walk", "2024-03-10T08:00:00+00:00", 5)
    stored = _store(engine, [event, event])
    assert (stored.added, stored.duplicates) == (1, 1)
    assert [j.verdict for j in stored.judgements] == [Verdict.NEW, Verdict.DUPLICATE]
    again = _store(engine, [event, {**event, "count": 6}])
    assert (again.added, again.duplicates) == (0, 1)
    assert [j.verdict for j in again.judgements] == [
        Verdict.DUPLICATE,
        Verdict.REJECTED,
    ]
    assert scalar(engine, "SELECT count(*) FROM mobility_count") == 1


def _random_batch(rng: random.Random, seq: int) -> list[dict[str, Any]]:
    # Hours around the spring DST change and a New Year, a few sites and modes,
    # revisions 0-3 so that restatements land in hours already rolled up.
    bases = [
        datetime(2024, 3, 30, 20, tzinfo=UTC),
        datetime(2024, 12, 31, 21, tzinfo=UTC),
    ]
    batch = []
    for i in range(rng.randint(1, 40)):
        start = rng.choice(bases) + timedelta(hours=rng.randint(0, 8))
        batch.append(
            count_event(
                f"s{rng.randint(1, 3)}",
                rng.choice(["car", "bike", "bus"]),
                start.isoformat(),
                rng.randint(0, 500),
                municipality_code=rng.choice(["101", "147"]),
                revision=rng.randint(0, 3),
                reported_at=f"2025-0{rng.randint(2, 9)}-01T00:00:00+00:00",
                event_id=f"r{seq}-{i}",
            )
        )
    return batch


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_rollups_equal_a_full_rebuild(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    for seq in range(8):
        _store(engine, _random_batch(rng, seq))
        _refresh(engine)
    incremental = _rollups(engine)
    months = [rows(engine, sql) for sql in _FROM_HOURS]
    rebuilt = in_transaction(engine, counts.rebuild_rollups)
    assert rebuilt.watermark_from == rebuilt.watermark_to
    assert _rollups(engine) == incremental
    # The rollups kept by deltas equal the sums of the hours.
    assert all(months) and [rows(engine, sql) for sql in _FROM_HOURS] == months
    # So do the feeds kept as counts are stored, against every stored count.
    feeds = [rows(engine, sql) for sql in _FEEDS]
    in_transaction(engine, counts.rebuild_feeds)
    assert feeds[0] and [rows(engine, sql) for sql in _FEEDS] == feeds
    # Exactly one current count per key, and it is the restatement rule's pick.
    assert (
        scalar(
            engine,
            """
        SELECT count(*) FROM (
            SELECT DISTINCT ON (site_id, mode, direction, interval_start)
                is_current
            FROM mobility_count
            ORDER BY site_id, mode, direction, interval_start,
                revision DESC, reported_at DESC, event_id DESC
        ) AS best WHERE NOT is_current""",
        )
        == 0
    )


def test_new_counts_grow_their_hour_and_a_restatement_sums_it_again(
    engine: Engine,
) -> None:
    hour = "2024-03-10T08:00:00+00:00"
    quarter = "2024-03-10T08:15:00+00:00"
    _store(engine, [count_event("s1", "bike", hour, 100, hours=0.25)])
    _refresh(engine)
    # A new count in a rolled-up hour: added to the row, nothing summed again.
    _store(engine, [count_event("s1", "bike", quarter, 20, hours=0.25)])
    assert scalar(engine, "SELECT bool_or(restates) FROM mobility_count") is False
    _refresh(engine)
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 120
    # Restating the first count: the hour is summed again from current counts.
    _store(engine, [count_event("s1", "bike", hour, 70, hours=0.25, revision=1)])
    assert rows(engine, "SELECT count, restates FROM mobility_count ORDER BY seq") == [
        {"count": 100, "restates": False},
        {"count": 20, "restates": False},
        {"count": 70, "restates": True},
    ]
    _refresh(engine)
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 90
    assert scalar(engine, "SELECT trips FROM mobility_region_hourly") == 90
    incremental = _rollups(engine)
    in_transaction(engine, counts.rebuild_rollups)
    assert _rollups(engine) == incremental


def test_an_hour_summed_again_leaves_later_counts_to_the_next_refresh(
    engine: Engine,
) -> None:
    hour = "2024-03-10T08:00:00+00:00"
    _store(engine, [count_event("s1", "bike", hour, 100, hours=0.25)])
    _refresh(engine)
    _store(engine, [count_event("s1", "bike", hour, 70, hours=0.25, revision=1)])
    upto = in_transaction(engine, counts.committed_seq)
    # Committed after the refresh read its `seq`: the next refresh adds it.
    later = "2024-03-10T08:30:00+00:00"
    _store(engine, [count_event("s1", "bike", later, 5, hours=0.25)])
    in_transaction(engine, lambda conn: counts.refresh_rollups(conn, upto))
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 70
    _refresh(engine)
    assert scalar(engine, "SELECT trips FROM mobility_hourly") == 75
    incremental = _rollups(engine)
    in_transaction(engine, counts.rebuild_rollups)
    assert _rollups(engine) == incremental


def test_restated_rows_are_read_in_the_order_of_the_count_fields() -> None:
    from dataclasses import fields

    from klimapuls.core.mobility import MobilityCount

    names = tuple(f.name for f in fields(MobilityCount))
    assert counts._COUNT_COLUMNS == names


def test_a_replayed_batch_is_judged_alike_with_or_without_a_draft(
    engine: Engine,
) -> None:
    """A batch stored before says so; judged again, drafted or not, it is all
    duplicates (the handler drafts no batch after a replayed one)."""
    events = [
        count_event(f"S-{i}", "bike", "2026-10-01T08:00:00+02:00", 10 + i)
        for i in range(3)
    ]
    assert not _store(engine, events).replayed
    valid = [validate_event("mobility_count", e, now=NOW) for e in events]
    for draft in (True, False):
        again = in_transaction(
            engine,
            lambda conn, draft=draft: counts.store_counts(
                conn, valid, NOW, grants=grants.load_grants(conn), draft=draft
            ),
        )
        assert again.replayed and again.added == 0
        assert [j.verdict for j in again.judgements] == [Verdict.DUPLICATE] * 3
