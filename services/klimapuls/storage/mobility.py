"""Mobility counts in PostgreSQL: idempotent writes, partitions, rollups.

Owner of every table here: the mobility service.

Writes are keyed by `event_id`: a duplicate changes nothing, and an id sent
again with other content is reported back (a producer bug, dead-lettered).
Restatements add rows; `is_current` moves to the winner of the restatement
rule (`klimapuls.core.mobility.wins_over`), so exactly one row per count key
is current and the rollups sum only those.

Rollups without TimescaleDB are tables refreshed incrementally: every row
carries `seq` from a sequence, and `mobility_rollup_state.watermark` is the
highest `seq` already rolled up. A refresh re-aggregates only the (hour,
site) pairs of rows above the watermark, then only the (day, municipality,
mode) and (year, municipality, mode) groups whose rows below changed. A
restatement adds a row in the same hour and site as the count it replaces,
so restated buckets are found the same way. Writers and refreshers hold one
advisory lock for the whole transaction, so `seq` order is commit order and
no row slips under the watermark. A refresh with nothing new is one index
probe per partition.

With TimescaleDB the rollups are continuous aggregates, refreshed by their
policies and by `refresh_continuous_aggregates` (untested here: the
extension is not installable in this environment).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, text

from klimapuls.core.authorisation import Grants, site_owner_issue
from klimapuls.core.errors import FieldIssue
from klimapuls.core.identity import (
    Identity,
    Judgement,
    Ledger,
    Verdict,
    stored_identity,
)
from klimapuls.core.mobility import (
    LOCAL_TIME,
    RANK_FIELDS,
    MobilityCount,
    ModalSplit,
    SiteYear,
    YearTrips,
    wins_over,
)
from klimapuls.core.validation import REPORT_HORIZON
from klimapuls.storage.db import as_json, copy_rows
from klimapuls.storage.events import lookup_ids
from klimapuls.storage.models_mobility import (
    MobilityModalSplitRow,
    MobilityYearRow,
)

__all__ = [
    "Backend",
    "RollupRefresh",
    "StoredCounts",
    "bike_site_years",
    "ensure_partitions",
    "lock_counts",
    "rebuild_feeds",
    "rebuild_rollups",
    "refresh_continuous_aggregates",
    "refresh_rollups",
    "restated_count_rows",
    "rollup_backend",
    "site_years_known",
    "store_counts",
    "write_modal_splits",
    "yearly_trips",
]

Backend = Literal["tables", "timescaledb"]

_HOUR_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_ZONE = "'Europe/Copenhagen'"
_STATE = "rollups"
_KIND = "mobility_count"


@dataclass
class StoredCounts:
    """What one `store_counts` call did."""

    added: int = 0
    duplicates: int = 0
    #: One judgement per event given, in order.
    judgements: list[Judgement] = field(default_factory=list)
    restated: int = 0
    partitions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RollupRefresh:
    """What one rollup refresh did; `hours == 0` means nothing was new."""

    watermark_from: int
    watermark_to: int
    hours: int = 0
    days: int = 0
    years: int = 0
    seconds: float = 0.0


def lock_counts(conn: Connection) -> None:
    """Serialise count writers and rollup refreshers until the commit."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.mobility.counts'))")
    )


def _relkind(conn: Connection, name: str) -> str | None:
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"),
        {"name": name},
    ).scalar()
    return None if kind is None else str(kind)


def rollup_backend(conn: Connection) -> Backend:
    """`tables` (own incremental rollups) or `timescaledb` (continuous aggregates)."""
    # A continuous aggregate is a view; our own rollup is a plain table.
    return "tables" if _relkind(conn, "mobility_hourly") == "r" else "timescaledb"


def _month_start(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def ensure_partitions(
    conn: Connection, starts: Iterable[datetime], now: datetime
) -> list[str]:
    """Create the monthly (UTC) partitions holding `starts`; return new ones.

    Only inside the horizon: a start after `now` plus
    `klimapuls.core.validation.REPORT_HORIZON` raises `ValueError` (the
    validators refuse such counts, so it would be a bug), and no partition
    for a far future month is ever made. A hypertable makes its chunks
    itself, so this does nothing there.
    """
    starts = list(starts)
    latest = now + REPORT_HORIZON
    beyond = [s for s in starts if s > latest]
    if beyond:
        raise ValueError(
            f"interval_start {beyond[0].isoformat()} is beyond the horizon "
            f"({latest.isoformat()}): no partition is created for it"
        )
    if _relkind(conn, "mobility_count") != "p":
        return []
    created = []
    for month in sorted({_month_start(s) for s in starts}):
        name = f"mobility_count_{month:%Y_%m}"
        if _relkind(conn, name) is not None:
            continue
        # Bounds are dates we computed, never event text.
        conn.execute(
            text(
                f"CREATE TABLE {name} PARTITION OF mobility_count FOR VALUES "
                f"FROM ('{month.isoformat()}') TO ('{_next_month(month).isoformat()}')"
            )
        )
        created.append(name)
    return created


def _stored(conn: Connection, ids: list[str]) -> list[Identity]:
    rows = conn.execute(
        text(
            "SELECT event_id, payload_sha256 FROM mobility_count WHERE event_id "
            "= ANY(ARRAY(SELECT json_array_elements_text(CAST(:ids AS json))))"
        ),
        {"ids": as_json(ids)},
    )
    return [Identity((_KIND, eid), eid, digest) for eid, digest in rows]


_CURRENT_OF_KEYS = text(
    """
    SELECT c.*
    FROM json_to_recordset(CAST(:keys AS json)) AS k(site_id text, mode text,
        direction text, interval_start timestamptz, interval_end timestamptz)
    JOIN mobility_count c ON c.is_current
        AND c.interval_start = k.interval_start AND c.site_id = k.site_id
        AND c.mode = k.mode AND c.direction = k.direction
        AND c.interval_end = k.interval_end
    """
)
_KEY_FIELDS = ("site_id", "mode", "direction", "interval_start", "interval_end")


def _current_of(conn: Connection, keys: Iterable[tuple[Any, ...]]) -> Any:
    """The current stored rows of these count keys (mappings)."""
    param = as_json([dict(zip(_KEY_FIELDS, key, strict=True)) for key in keys])
    return conn.execute(_CURRENT_OF_KEYS, {"keys": param}).mappings()


def _rivals(conn: Connection, events: Sequence[dict[str, Any]]) -> list[Identity]:
    """The current stored count of the count keys of `events`."""
    keys = sorted({MobilityCount.from_event(e).key for e in events})
    rows = _current_of(conn, keys)
    return [
        stored_identity(_KIND, r["event_id"], r["payload_sha256"], _count_of(r))
        for r in rows
    ]


def _count_of(r: Mapping[Any, Any]) -> MobilityCount:
    return MobilityCount(
        event_id=r["event_id"],
        producer=r["producer"],
        site_id=r["site_id"],
        municipality_code=r["municipality_code"],
        mode=r["mode"],
        direction=r["direction"],
        interval_start=r["interval_start"],
        interval_end=r["interval_end"],
        count=int(r["count"]),
        reported_at=r["reported_at"],
        revision=int(r["revision"]),
        delay_hours=r["delay_hours"],
        site_kind=r["site_kind"],
    )


def _site_owners(conn: Connection, sites: Iterable[str]) -> dict[str, str]:
    """The municipality of each known site's first stored count."""
    rows = conn.execute(
        text(
            "SELECT site_id, municipality_code FROM counting_site WHERE site_id "
            "= ANY(ARRAY(SELECT json_array_elements_text(CAST(:ids AS json))))"
        ),
        {"ids": as_json(sorted(sites))},
    )
    return {site: code for site, code in rows}


@dataclass
class _SiteOwners:
    """The municipality each counting site belongs to, as a ledger's `admit`.

    A new count naming another municipality than its site's is refused unless
    its producer may write the site's (`site_owner_issue`); a new site belongs
    to the municipality of its first count (in batch order). The owners of the
    batch's sites are read at the first new count only.
    """

    conn: Connection
    sites: set[str]
    grants: Grants
    owners: dict[str, str] | None = None
    #: Sites first seen in this batch, as `counting_site` rows.
    first: list[dict[str, str]] = field(default_factory=list)

    def admit(self, event: Mapping[str, Any]) -> FieldIssue | None:
        if self.owners is None:
            self.owners = _site_owners(self.conn, self.sites)
        site = str(event["site_id"])
        issue = site_owner_issue(self.grants, event, self.owners.get(site))
        if issue is None and site not in self.owners:
            self.owners[site] = str(event["municipality_code"])
            self.first.append(
                {"s": site, "m": self.owners[site], "e": str(event["event_id"])}
            )
        return issue

    def record(self) -> None:
        """Store the sites first seen (their first count's municipality)."""
        if self.first:
            self.conn.execute(
                text(
                    "INSERT INTO counting_site (site_id, municipality_code, "
                    "first_event_id) VALUES (:s, :m, :e) ON CONFLICT DO NOTHING"
                ),
                self.first,
            )


def store_counts(
    conn: Connection,
    events: Sequence[dict[str, Any]],
    now: datetime,
    *,
    grants: Grants,
) -> StoredCounts:
    """Insert count events idempotently and move `is_current` to restatements.

    `now` is the caller's clock: partitions are made only inside the horizon
    (`ensure_partitions`). A count that would move its site to another
    municipality is refused unless `grants` let its producer write the
    site's (`klimapuls.core.authorisation.site_owner_issue`). Takes the
    count lock (see `lock_counts`) for the rest of the transaction.
    """
    result = StoredCounts()
    if not events:
        return result
    lock_counts(conn)
    known = _stored(conn, lookup_ids(events))
    stored = {identity.event_id for identity in known}
    again = [e for e in events if e["event_id"] in stored]
    ledger = Ledger.of(_KIND, known, _rivals(conn, again) if again else [])
    sites = _SiteOwners(conn, {str(e["site_id"]) for e in events}, grants)
    result.judgements = [ledger.judge(event, sites.admit) for event in events]
    sites.record()
    new: list[dict[str, Any]] = []
    digests: dict[str, str] = {}
    for event, judgement in zip(events, result.judgements, strict=True):
        if judgement.verdict is Verdict.NEW:
            digests[judgement.identity.event_id] = judgement.identity.digest
            # A re-sent fact is stored under the id of its new report.
            new.append({**event, "event_id": judgement.identity.event_id})
        elif judgement.verdict is Verdict.DUPLICATE:
            result.duplicates += 1
    if not new:
        return result
    counts = [MobilityCount.from_event(e) for e in new]
    result.partitions = ensure_partitions(conn, [c.interval_start for c in counts], now)

    by_key: dict[tuple[Any, ...], list[MobilityCount]] = defaultdict(list)
    for count in counts:
        by_key[count.key].append(count)
    keys = list(by_key)
    winners = {key: max(group, key=lambda c: c.rank) for key, group in by_key.items()}
    losers: list[dict[str, Any]] = []
    for row in _current_of(conn, keys):
        key = (
            row["site_id"],
            row["mode"],
            row["direction"],
            row["interval_start"],
            row["interval_end"],
        )
        winner = winners.get(key)
        if winner is None:
            continue
        if wins_over(
            winner.rank, (row["revision"], row["reported_at"], row["event_id"])
        ):
            losers.append({"e": row["event_id"], "s": row["interval_start"]})
        else:
            del winners[key]  # a late, older restatement: stored, not current
    if losers:
        conn.execute(
            text(
                "UPDATE mobility_count SET is_current = false "
                "WHERE event_id = :e AND interval_start = :s"
            ),
            losers,
        )
    result.restated = len(losers)
    current_ids = {w.event_id for w in winners.values()}
    # One COPY, not one INSERT per row: the count lock and the judging above
    # make every row new, so nothing can conflict.
    copy_rows(
        conn,
        "mobility_count",
        _COPIED,
        (
            (
                c.event_id,
                c.site_id,
                c.site_kind,
                c.municipality_code,
                c.mode,
                c.direction,
                c.interval_start,
                c.interval_end,
                c.count,
                c.delay_hours,
                c.revision,
                c.event_id in current_ids,
                e["producer"],
                c.reported_at,
                digests[c.event_id],
            )
            for c, e in zip(counts, new, strict=True)
        ),
    )
    _add_to_feeds(conn, counts, [e["producer"] for e in new])
    result.added = len(counts)
    return result


_COPIED = (
    "event_id",
    "site_id",
    "site_kind",
    "municipality_code",
    "mode",
    "direction",
    "interval_start",
    "interval_end",
    "count",
    "delay_hours",
    "revision",
    "is_current",
    "producer",
    "reported_at",
    "payload_sha256",
)


# What the boards ask of every stored count (`board.data_origin`,
# `board.feed_freshness`, `board.events_received_minutely`), kept as the counts
# are stored, so no panel scans the raw counts. `received_at` is the
# transaction's `now()`, as on the count rows.
_SYNTHETIC = "producer ILIKE '%synthetic%'"
_FEEDS = (
    """
    INSERT INTO mobility_feed AS f (site_id, municipality_code, events,
        synthetic_events, last_period, last_received)
    SELECT site_id, municipality_code, events, synthetic_events,
        last_period, now()
    FROM json_to_recordset(CAST(:sites AS json)) AS t(site_id text,
        municipality_code text, events bigint, synthetic_events bigint,
        last_period timestamptz)
    ON CONFLICT (site_id) DO UPDATE SET
        municipality_code = least(f.municipality_code, excluded.municipality_code),
        events = f.events + excluded.events,
        synthetic_events = f.synthetic_events + excluded.synthetic_events,
        last_period = greatest(f.last_period, excluded.last_period),
        last_received = greatest(f.last_received, excluded.last_received)
    """,
    """
    INSERT INTO mobility_receipt AS r (minute, synthetic, events, last_received)
    SELECT date_trunc('minute', now()), synthetic, events, now()
    FROM json_to_recordset(CAST(:receipts AS json))
        AS t(synthetic boolean, events bigint)
    ON CONFLICT (minute, synthetic) DO UPDATE SET
        events = r.events + excluded.events,
        last_received = greatest(r.last_received, excluded.last_received)
    """,
)
_REBUILD_FEEDS = (
    "TRUNCATE mobility_feed, mobility_receipt",
    f"""
    INSERT INTO mobility_feed (site_id, municipality_code, events,
        synthetic_events, last_period, last_received)
    SELECT site_id, min(municipality_code), count(*),
        count(*) FILTER (WHERE {_SYNTHETIC}), max(interval_end), max(received_at)
    FROM mobility_count GROUP BY site_id
    """,
    f"""
    INSERT INTO mobility_receipt (minute, synthetic, events, last_received)
    SELECT date_trunc('minute', received_at), {_SYNTHETIC}, count(*),
        max(received_at)
    FROM mobility_count GROUP BY 1, 2
    """,
)


def _is_synthetic(producer: str) -> bool:
    # As `_SYNTHETIC` says it in SQL (ILIKE '%synthetic%').
    return "synthetic" in producer.lower()


def _add_to_feeds(
    conn: Connection, counts: Sequence[MobilityCount], producers: Sequence[str]
) -> None:
    """Add new counts to the per-site feeds and per-minute receipts.

    Summed per site here, so the server gets one small JSON row a site.
    """
    sites: dict[str, dict[str, Any]] = {}
    receipts: dict[bool, int] = defaultdict(int)
    for count, producer in zip(counts, producers, strict=True):
        synthetic = _is_synthetic(producer)
        receipts[synthetic] += 1
        site = sites.get(count.site_id)
        if site is None:
            sites[count.site_id] = {
                "site_id": count.site_id,
                "municipality_code": count.municipality_code,
                "events": 1,
                "synthetic_events": int(synthetic),
                "last_period": count.interval_end,
            }
            continue
        site["municipality_code"] = min(
            site["municipality_code"], count.municipality_code
        )
        site["events"] += 1
        site["synthetic_events"] += int(synthetic)
        site["last_period"] = max(site["last_period"], count.interval_end)
    feeds, minute = _FEEDS
    conn.execute(text(feeds), {"sites": as_json(list(sites.values()))})
    conn.execute(
        text(minute),
        {
            "receipts": as_json(
                [{"synthetic": k, "events": v} for k, v in receipts.items()]
            )
        },
    )


def rebuild_feeds(conn: Connection) -> None:
    """Recompute the per-site feed and per-minute receipt rows from every count."""
    lock_counts(conn)
    for statement in _REBUILD_FEEDS:
        conn.execute(text(statement))


def _local_day(moment: datetime) -> datetime:
    local = moment.astimezone(LOCAL_TIME)
    return datetime(local.year, local.month, local.day, tzinfo=LOCAL_TIME)


def _next_local_day(day: datetime) -> datetime:
    # Local days are 23 to 25 hours long: step by date, not by 24 hours.
    following = day.date() + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=LOCAL_TIME)


def _local_year(moment: datetime) -> datetime:
    return datetime(moment.astimezone(LOCAL_TIME).year, 1, 1, tzinfo=LOCAL_TIME)


def _next_local_year(year: datetime) -> datetime:
    return datetime(year.year + 1, 1, 1, tzinfo=LOCAL_TIME)


# Hours are rebuilt per (hour, site) touched, from the current counts (a
# restatement shares its site and hour with the count it replaces). Days and
# years are rebuilt only for the (bucket, municipality, mode) groups whose
# rows below changed, so a scattered restatement re-adds a few groups, not
# every site of its day. The lateral subqueries make PostgreSQL probe the
# indexes per group instead of hashing whole partitions.
_HOURS = """json_to_recordset(CAST(:t AS json))
        AS t(bucket timestamptz, until timestamptz, site_id text)"""
_GROUPS = """json_to_recordset(CAST(:t AS json)) AS t(bucket timestamptz,
        until timestamptz, municipality_code text, mode text)"""
_ROWS = "bucket, municipality_code, mode, trips, delay_hours, counts"
_ROLLUP_HOURS = (
    f"""
    DELETE FROM mobility_hourly h USING {_HOURS}
    WHERE h.bucket = t.bucket AND h.site_id = t.site_id
    RETURNING h.{_ROWS.replace(", ", ", h.")}, h.site_id
    """,
    f"""
    INSERT INTO mobility_hourly ({_ROWS}, site_id)
    SELECT t.bucket, c.municipality_code, c.mode, c.trips, c.delay_hours,
        c.counts, t.site_id
    FROM {_HOURS}
    CROSS JOIN LATERAL (
        SELECT municipality_code, mode, sum(count) AS trips,
            sum(delay_hours) AS delay_hours, count(*) AS counts
        FROM mobility_count
        WHERE is_current AND site_id = t.site_id
            AND interval_start >= t.bucket AND interval_start < t.until
        GROUP BY municipality_code, mode
    ) AS c
    RETURNING {_ROWS}, site_id
    """,
)
_ROLLUP_DAYS = (
    f"""
    DELETE FROM mobility_daily d USING {_GROUPS}
    WHERE d.bucket = t.bucket AND d.municipality_code = t.municipality_code
        AND d.mode = t.mode
    RETURNING d.{_ROWS.replace(", ", ", d.")}, d.month_mask
    """,
    f"""
    INSERT INTO mobility_daily ({_ROWS}, month_mask)
    SELECT t.bucket, t.municipality_code, t.mode, h.trips, h.delay_hours,
        h.counts,
        1 << (extract(month FROM t.bucket AT TIME ZONE {_ZONE})::int - 1)
    FROM {_GROUPS}
    CROSS JOIN LATERAL (
        SELECT sum(trips) AS trips, sum(delay_hours) AS delay_hours,
            sum(counts) AS counts
        FROM mobility_hourly
        WHERE municipality_code = t.municipality_code AND mode = t.mode
            AND bucket >= t.bucket AND bucket < t.until
        HAVING count(*) > 0
    ) AS h
    RETURNING {_ROWS}, month_mask
    """,
)
_ROLLUP_YEARS = (
    f"""
    DELETE FROM mobility_yearly y USING {_GROUPS}
    WHERE y.bucket = t.bucket AND y.municipality_code = t.municipality_code
        AND y.mode = t.mode
    RETURNING y.{_ROWS.replace(", ", ", y.")}, y.month_mask
    """,
    f"""
    INSERT INTO mobility_yearly ({_ROWS}, month_mask)
    SELECT t.bucket, t.municipality_code, t.mode, d.trips, d.delay_hours,
        d.counts, d.month_mask
    FROM {_GROUPS}
    CROSS JOIN LATERAL (
        SELECT sum(trips) AS trips, sum(delay_hours) AS delay_hours,
            sum(counts) AS counts, bit_or(month_mask) AS month_mask
        FROM mobility_daily
        WHERE municipality_code = t.municipality_code AND mode = t.mode
            AND bucket >= t.bucket AND bucket < t.until
        HAVING count(*) > 0
    ) AS d
    RETURNING {_ROWS}, month_mask
    """,
)

Group = tuple[datetime, str, str]  # bucket, municipality, mode


def _rewritten(
    conn: Connection, statements: tuple[str, str], params: dict[str, Any]
) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Run delete + insert; the rows removed and the rows added (those differing)."""
    before = {tuple(r) for r in conn.execute(text(statements[0]), params)}
    after = {tuple(r) for r in conn.execute(text(statements[1]), params)}
    return before - after, after - before


def _changed(
    conn: Connection, statements: tuple[str, str], params: dict[str, Any]
) -> set[Group]:
    """Run delete + insert; the groups whose rows differ before and after."""
    removed, added = _rewritten(conn, statements, params)
    return {(r[0], r[1], r[2]) for r in removed | added}


def _local_month(moment: datetime) -> datetime:
    local = moment.astimezone(LOCAL_TIME)
    return datetime(local.year, local.month, 1, tzinfo=LOCAL_TIME)


#: Rollups kept from the deltas of the hour rows a refresh rewrites:
#: table -> (key columns, the key of an hour row's bucket, site, code, mode).
#: Each has `trips`, `counts` and `hours` (hour rows summed; a key left with
#: none is deleted), so the result equals summing the hours (`_REBUILD`).
_FROM_HOURS: dict[str, tuple[tuple[str, ...], Callable[..., tuple[Any, ...]]]] = {
    "mobility_site_monthly": (
        ("bucket", "site_id", "municipality_code", "mode"),
        lambda b, site, code, mode: (_local_month(b), site, code, mode),
    ),
    "mobility_mode_hourly": (
        ("bucket", "municipality_code", "mode"),
        lambda b, site, code, mode: (b, code, mode),
    ),
    "mobility_region_hourly": (
        ("bucket", "mode"),
        lambda b, site, code, mode: (b, mode),
    ),
}


def _recordset(keys: tuple[str, ...], *numbers: str) -> str:
    """The `:rows` JSON parameter as a typed record set named `t`."""
    columns = [f"{k} {'timestamptz' if k == 'bucket' else 'text'}" for k in keys]
    columns += [f"{n} bigint" for n in numbers]
    return f"json_to_recordset(CAST(:rows AS json)) AS t({', '.join(columns)})"


def _from_hours_sql(table: str, keys: tuple[str, ...]) -> tuple[str, str]:
    columns = ", ".join(keys)
    upsert = f"""
    INSERT INTO {table} AS m ({columns}, trips, counts, hours)
    SELECT {columns}, trips, counts, hours
    FROM {_recordset(keys, "trips", "counts", "hours")}
    ON CONFLICT ({columns}) DO UPDATE SET
        trips = m.trips + excluded.trips, counts = m.counts + excluded.counts,
        hours = m.hours + excluded.hours
    """
    match = " AND ".join(f"m.{k} = t.{k}" for k in keys)
    empty = f"""
    DELETE FROM {table} m USING {_recordset(keys)}
    WHERE {match} AND m.hours = 0
    """
    return upsert, empty


def _add_hour_deltas(
    conn: Connection, removed: set[tuple[Any, ...]], added: set[tuple[Any, ...]]
) -> None:
    """Move the rollups of `_FROM_HOURS` by the hour rows that changed.

    Rows are `_ROLLUP_HOURS`' (bucket, municipality, mode, trips, delay,
    counts, site): a removed row is taken off its key, an added one put on.
    """
    if not removed and not added:
        return
    for table, (keys, key_of) in _FROM_HOURS.items():
        deltas: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
        for sign, hour_rows in ((-1, removed), (1, added)):
            for bucket, code, mode, trips, _delay, n, site in hour_rows:
                delta = deltas[key_of(bucket, site, code, mode)]
                delta[0] += sign * int(trips)
                delta[1] += sign * int(n)
                delta[2] += sign
        rows = [
            dict(zip(keys, key, strict=True))
            | {"trips": d[0], "counts": d[1], "hours": d[2]}
            for key, d in sorted(deltas.items())
        ]
        for statement in _from_hours_sql(table, keys):
            conn.execute(text(statement), {"rows": as_json(rows)})


def _group_params(
    groups: set[Group],
    bucket_of: Callable[[datetime], datetime],
    following: Callable[[datetime], datetime],
) -> tuple[dict[str, Any], int]:
    """The `_GROUPS` parameter for these groups, and how many buckets they touch."""
    keys = sorted({(bucket_of(b), code, mode) for b, code, mode in groups})
    rows = [
        {"bucket": b, "until": following(b), "municipality_code": m, "mode": o}
        for b, m, o in keys
    ]
    return {"t": as_json(rows)}, len({k[0] for k in keys})


def _advance(conn: Connection, watermark: int) -> None:
    conn.execute(
        text(
            "UPDATE mobility_rollup_state SET watermark = :w, refreshed_at = now() "
            "WHERE name = :n"
        ),
        {"w": watermark, "n": _STATE},
    )


def refresh_rollups(conn: Connection) -> RollupRefresh:
    """Roll up what arrived since the watermark (hour, then day, then year).

    A refresh with nothing new reads one index entry per partition and
    writes nothing. With TimescaleDB this does nothing: see
    `refresh_continuous_aggregates`.
    """
    began = time.perf_counter()
    if rollup_backend(conn) != "tables":
        return RollupRefresh(0, 0)
    lock_counts(conn)
    low = int(
        conn.execute(
            text("SELECT watermark FROM mobility_rollup_state WHERE name = :n"),
            {"n": _STATE},
        ).scalar_one()
    )
    high = conn.execute(
        text("SELECT max(seq) FROM mobility_count WHERE seq > :w"), {"w": low}
    ).scalar()
    if high is None:
        return RollupRefresh(low, low, seconds=time.perf_counter() - began)
    touched = conn.execute(
        text(
            f"SELECT DISTINCT date_bin('1 hour', interval_start, {_HOUR_ORIGIN}), "
            "site_id FROM mobility_count WHERE seq > :low AND seq <= :high"
        ),
        {"low": low, "high": high},
    ).all()
    hours = [
        {"bucket": hour, "until": hour + timedelta(hours=1), "site_id": site}
        for hour, site in touched
    ]
    removed, added = _rewritten(conn, _ROLLUP_HOURS, {"t": as_json(hours)})
    changed_hours = {(r[0], r[1], r[2]) for r in removed | added}
    _add_hour_deltas(conn, removed, added)
    days, day_buckets = _group_params(changed_hours, _local_day, _next_local_day)
    changed_days = _changed(conn, _ROLLUP_DAYS, days) if changed_hours else set()
    years, year_buckets = _group_params(changed_days, _local_year, _next_local_year)
    if changed_days:
        _changed(conn, _ROLLUP_YEARS, years)
    _advance(conn, int(high))
    return RollupRefresh(
        low,
        int(high),
        hours=len({h["bucket"] for h in hours}),
        days=day_buckets,
        years=year_buckets,
        seconds=time.perf_counter() - began,
    )


_REBUILD = (
    "TRUNCATE mobility_hourly, mobility_daily, mobility_yearly, "
    "mobility_site_monthly, mobility_mode_hourly, mobility_region_hourly",
    f"""
    INSERT INTO mobility_hourly
        (bucket, municipality_code, site_id, mode, trips, delay_hours, counts)
    SELECT date_bin('1 hour', interval_start, {_HOUR_ORIGIN}), municipality_code,
        site_id, mode, sum(count), sum(delay_hours), count(*)
    FROM mobility_count WHERE is_current
    GROUP BY 1, municipality_code, site_id, mode
    """,
    f"""
    INSERT INTO mobility_daily
        (bucket, municipality_code, mode, trips, delay_hours, counts, month_mask)
    SELECT date_trunc('day', bucket, {_ZONE}), municipality_code, mode,
        sum(trips), sum(delay_hours), sum(counts),
        bit_or(1 << (extract(month FROM bucket AT TIME ZONE {_ZONE})::int - 1))
    FROM mobility_hourly GROUP BY 1, municipality_code, mode
    """,
    f"""
    INSERT INTO mobility_yearly
        (bucket, municipality_code, mode, trips, delay_hours, counts, month_mask)
    SELECT date_trunc('year', bucket, {_ZONE}), municipality_code, mode,
        sum(trips), sum(delay_hours), sum(counts), bit_or(month_mask)
    FROM mobility_daily GROUP BY 1, municipality_code, mode
    """,
    f"""
    INSERT INTO mobility_site_monthly
        (bucket, site_id, municipality_code, mode, trips, counts, hours)
    SELECT date_trunc('month', bucket, {_ZONE}), site_id, municipality_code, mode,
        sum(trips), sum(counts), count(*)
    FROM mobility_hourly GROUP BY 1, site_id, municipality_code, mode
    """,
    """
    INSERT INTO mobility_mode_hourly
        (bucket, municipality_code, mode, trips, counts, hours)
    SELECT bucket, municipality_code, mode, sum(trips), sum(counts), count(*)
    FROM mobility_hourly GROUP BY bucket, municipality_code, mode
    """,
    """
    INSERT INTO mobility_region_hourly (bucket, mode, trips, counts, hours)
    SELECT bucket, mode, sum(trips), sum(counts), count(*)
    FROM mobility_hourly GROUP BY bucket, mode
    """,
)


def rebuild_rollups(conn: Connection) -> RollupRefresh:
    """Recompute every rollup from all current counts (repair, and the baseline)."""
    began = time.perf_counter()
    if rollup_backend(conn) != "tables":
        return RollupRefresh(0, 0)
    lock_counts(conn)
    low = int(
        conn.execute(
            text("SELECT watermark FROM mobility_rollup_state WHERE name = :n"),
            {"n": _STATE},
        ).scalar_one()
    )
    high = int(
        conn.execute(text("SELECT coalesce(max(seq), 0) FROM mobility_count")).scalar()
        or 0
    )
    for statement in _REBUILD:
        conn.execute(text(statement))
    _advance(conn, high)
    sizes = conn.execute(
        text(
            "SELECT (SELECT count(DISTINCT bucket) FROM mobility_hourly), "
            "(SELECT count(DISTINCT bucket) FROM mobility_daily), "
            "(SELECT count(DISTINCT bucket) FROM mobility_yearly)"
        )
    ).one()
    return RollupRefresh(
        low,
        high,
        hours=int(sizes[0]),
        days=int(sizes[1]),
        years=int(sizes[2]),
        seconds=time.perf_counter() - began,
    )


def refresh_continuous_aggregates(engine: Engine) -> None:
    """TimescaleDB: refresh the hour, day and year aggregates, in that order.

    The whole range is named, but TimescaleDB re-materialises only what its
    invalidation log marks (new counts and restatements), so a refresh with
    nothing new is cheap. Needs an autocommit connection: TimescaleDB refuses
    to refresh inside a transaction. Untested here (no TimescaleDB).
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for view in ("mobility_hourly", "mobility_daily", "mobility_yearly"):
            conn.execute(
                text(
                    "CALL refresh_continuous_aggregate("
                    "CAST(:v AS regclass), NULL, NULL)"
                ),
                {"v": view},
            )


def yearly_trips(conn: Connection) -> list[YearTrips]:
    """Current trips per (local) year, municipality and mode."""
    rows = conn.execute(
        text(
            f"SELECT extract(year FROM bucket AT TIME ZONE {_ZONE})::int, "
            "municipality_code, mode, trips, month_mask FROM mobility_yearly"
        )
    )
    return [
        YearTrips(int(year), code, mode, int(trips), int(mask))
        for year, code, mode, trips, mask in rows
    ]


_SITE_YEAR = f"extract(year FROM {{t}} AT TIME ZONE {_ZONE})::int"
_MONTH_BIT = f"1 << (extract(month FROM {{t}} AT TIME ZONE {_ZONE})::int - 1)"


def bike_site_years(conn: Connection) -> list[SiteYear]:
    """Current bike trips per (local) year and site, with months.

    From the site months (one row per site and local month) on our own
    rollups; from the hours with TimescaleDB, which has no site months.
    """
    source = (
        "mobility_site_monthly"
        if _relkind(conn, "mobility_site_monthly") == "r"
        and rollup_backend(conn) == "tables"
        else "mobility_hourly"
    )
    rows = conn.execute(
        text(
            f"SELECT {_SITE_YEAR.format(t='bucket')} AS year, municipality_code, "
            f"site_id, sum(trips), bit_or({_MONTH_BIT.format(t='bucket')}) "
            f"FROM {source} WHERE mode = 'bike' "
            "GROUP BY 1, municipality_code, site_id"
        )
    )
    return [
        SiteYear(int(year), code, site, "bike", int(trips), int(mask))
        for year, code, site, trips, mask in rows
    ]


def _rank_order() -> str:
    # The core's rank (`RANK_FIELDS`), highest first; event ids compare by
    # code point as Python strings do ("C" collation).
    collate = {"event_id": ' COLLATE "C"'}
    return ", ".join(f"{f}{collate.get(f, '')} DESC" for f in RANK_FIELDS)


_KNOWN_SITE_YEARS = f"""
    WITH known AS (
        SELECT DISTINCT ON (site_id, mode, direction, interval_start, interval_end)
            site_id, mode, municipality_code, interval_start, count
        FROM mobility_count
        WHERE reported_at < :cutoff
        ORDER BY site_id, mode, direction, interval_start, interval_end,
            {_rank_order()}
    )
    SELECT {_SITE_YEAR.format(t="interval_start")} AS year, municipality_code,
        site_id, mode, sum(count),
        bit_or({_MONTH_BIT.format(t="interval_start")})
    FROM known GROUP BY 1, municipality_code, site_id, mode
"""


def site_years_known(conn: Connection, cutoff: datetime) -> list[SiteYear]:
    """Trips per (local) year, site and mode from the counts reported before `cutoff`.

    Of the counts of one key known then, the current one is the highest of
    the core's rank (`klimapuls.core.mobility.RANK_FIELDS`), as
    `current_counts` picks it; the rollups cannot say what was known when.
    """
    rows = conn.execute(text(_KNOWN_SITE_YEARS), {"cutoff": cutoff})
    return [
        SiteYear(int(year), code, site, mode, int(trips), int(mask))
        for year, code, site, mode, trips, mask in rows
    ]


# The restated rows by their partial index, then the current row of each of
# their keys by the current-count index: never a scan of every count.
#: `MobilityCount`'s fields in its order: the restated rows are read positionally.
_COUNT_COLUMNS = (
    "event_id",
    "site_id",
    "municipality_code",
    "mode",
    "direction",
    "interval_start",
    "interval_end",
    "count",
    "reported_at",
    "revision",
    "delay_hours",
    "site_kind",
    "producer",
)
_RESTATED = f"""
    SELECT {", ".join(_COUNT_COLUMNS)} FROM mobility_count WHERE NOT is_current
    UNION ALL
    SELECT {", ".join(f"c.{name}" for name in _COUNT_COLUMNS)}
    FROM (
        SELECT DISTINCT site_id, mode, direction, interval_start, interval_end
        FROM mobility_count WHERE NOT is_current
    ) k
    JOIN mobility_count c ON c.is_current
        AND c.interval_start = k.interval_start AND c.site_id = k.site_id
        AND c.mode = k.mode AND c.direction = k.direction
        AND c.interval_end = k.interval_end
"""


def restated_count_rows(conn: Connection) -> list[MobilityCount]:
    """Every stored count of a count key that has a restated (not current) row."""
    return [MobilityCount(*row) for row in conn.execute(text(_RESTATED)).all()]


def write_modal_splits(conn: Connection, splits: Sequence[ModalSplit]) -> None:
    """Replace the modal split and yearly indicator rows (small tables)."""
    conn.execute(delete(MobilityModalSplitRow))
    conn.execute(delete(MobilityYearRow))
    copy_rows(
        conn,
        MobilityModalSplitRow.__tablename__,
        ("scope", "year", "mode", "trips", "share_pct"),
        (
            (s.scope, s.year, mode, trips, s.shares.get(mode))
            for s in splits
            for mode, trips in s.trips.items()
        ),
    )
    copy_rows(
        conn,
        MobilityYearRow.__tablename__,
        (
            "scope",
            "year",
            "total_trips",
            "sustainable_trips",
            "sustainable_share_pct",
            "bike_trips",
            "months_covered",
            "counted",
            "provisional",
        ),
        (
            (
                s.scope,
                s.year,
                s.total_trips,
                s.sustainable_trips,
                s.sustainable_share,
                s.bike_trips,
                s.months_covered,
                s.counted,
                s.provisional,
            )
            for s in splits
        ),
    )
