"""Mobility counts in PostgreSQL: idempotent writes, partitions, rollups.

Owner of every table here: the mobility service.

Writes are keyed by `event_id`: a duplicate changes nothing, and an id sent
again with other content is reported back (a producer bug, dead-lettered).
Restatements add rows; `is_current` moves to the winner of the restatement
rule (`klimapuls.core.mobility.wins_over`), so exactly one row per count key
is current and the rollups sum only those.

Rollups without TimescaleDB are tables refreshed incrementally: every row
carries `seq` from a sequence, and `mobility_rollup_state.watermark` is the
highest `seq` already rolled up. A refresh adds the rows above the
watermark to the hour rows of their (hour, site) pairs, then rebuilds only
the (day, municipality, mode) and (year, municipality, mode) groups holding
a changed hour. A restatement adds a row in the same hour and site as the
count it replaces, marked `restates`: its pair's hours are summed again
from the current counts instead (see `_FIND_TOUCHED`). Writers hold the
count lock until their commit, so `seq` order is commit order; a refresh
holds the rollup lock (one refresher at a time) and rolls up to
`committed_seq`, read under the count lock in a short transaction before
it, so no row slips under the watermark and the writers go on while it
works. A refresh with nothing new is one index probe per partition.

With TimescaleDB the rollups are continuous aggregates, refreshed by their
policies and by `refresh_continuous_aggregates` (untested here: the
extension is not installable in this environment).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import compress
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, text

from klimapuls.core.authorisation import Grants, site_owner_issue
from klimapuls.core.errors import FieldIssue
from klimapuls.core.identity import (
    Identity,
    Judgement,
    Ledger,
    Verdict,
    identity_of,
    resend_id,
    stored_identity,
)
from klimapuls.core.mobility import (
    RANK_FIELDS,
    CountKey,
    MobilityCount,
    ModalSplit,
    SiteYear,
    YearTrips,
    wins_over,
)
from klimapuls.core.validation import REPORT_HORIZON
from klimapuls.storage.db import as_json, copy_rows
from klimapuls.storage.events import may_be_resent
from klimapuls.storage.models_mobility import (
    MobilityModalSplitRow,
    MobilityYearRow,
)
from klimapuls.storage.staging import Staging

__all__ = [
    "Backend",
    "RollupRefresh",
    "StoredCounts",
    "bike_site_years",
    "committed_seq",
    "ensure_partitions",
    "lock_counts",
    "lock_rollups",
    "rebuild_feeds",
    "rebuild_rollups",
    "refresh_continuous_aggregates",
    "refresh_rollups",
    "restated_count_rows",
    "rollup_backend",
    "site_years_known",
    "store_counts",
    "try_lock_rollups",
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
    #: Whether any of the batch was stored before (a replay, a re-send).
    replayed: bool = False


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
    """Serialise count writers (and a rebuild) until the commit."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.mobility.counts'))")
    )


def lock_rollups(conn: Connection) -> None:
    """Serialise rollup refreshers and modal split writers until the commit."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('klimapuls.mobility.rollups'))")
    )


def try_lock_rollups(conn: Connection) -> bool:
    """`lock_rollups` if it is free; False when another transaction holds it."""
    return bool(
        conn.execute(
            text(
                "SELECT pg_try_advisory_xact_lock("
                "hashtext('klimapuls.mobility.rollups'))"
            )
        ).scalar()
    )


def committed_seq(conn: Connection) -> int:
    """The highest `seq` of any count, once no writer is in flight.

    Taken under the count lock in a transaction of its own (commit right
    after): every row at or below it is committed, and every later writer
    draws a higher one, so a refresh up to it misses nothing and need not
    hold the writers back while it works.
    """
    lock_counts(conn)
    high = conn.execute(text("SELECT max(seq) FROM mobility_count")).scalar()
    return int(high or 0)


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
    # The counts of an hour share their start: each distinct one once.
    distinct = set(starts)
    latest = now + REPORT_HORIZON
    if distinct and max(distinct) > latest:
        raise ValueError(
            f"interval_start {max(distinct).isoformat()} is beyond the horizon "
            f"({latest.isoformat()}): no partition is created for it"
        )
    if _relkind(conn, "mobility_count") != "p":
        return []
    created = []
    for month in sorted({_month_start(s) for s in distinct}):
        name = f"mobility_count_{month:%Y_%m}"
        if _relkind(conn, name) is not None:
            continue
        # Made apart, then attached: `CREATE TABLE ... PARTITION OF` locks
        # the parent against every reader until the commit, so it waited for
        # a derive's rollups (1.5 s in a backlog) with both writers queued
        # behind it; attaching needs only a lock that readers and writers
        # share. Bounds are dates we computed, never event text.
        conn.execute(
            text(
                f"CREATE TABLE {name} "
                "(LIKE mobility_count INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            )
        )
        conn.execute(
            text(
                f"ALTER TABLE mobility_count ATTACH PARTITION {name} FOR VALUES "
                f"FROM ('{month.isoformat()}') TO ('{_next_month(month).isoformat()}')"
            )
        )
        created.append(name)
    return created


# A batch is staged once (`klimapuls.storage.staging`).
_STAGE = "mobility_count_in"
_STAGED = (
    ("idx", "int4"),
    ("event_id", "text"),
    ("resend_id", "text"),
    ("site_id", "text"),
    ("site_kind", "text"),
    ("municipality_code", "text"),
    ("mode", "text"),
    ("direction", "text"),
    ("interval_start", "timestamptz"),
    ("interval_end", "timestamptz"),
    ("count", "int8"),
    ("delay_hours", "float8"),
    ("revision", "int4"),
    ("producer", "text"),
    ("reported_at", "timestamptz"),
    ("payload_sha256", "text"),
)
_STAGING = Staging(_STAGE, _STAGED)


def _staged_row(
    index: int, count: MobilityCount, event: Mapping[str, Any], digest: str
) -> tuple[Any, ...]:
    return (
        index,
        count.event_id,
        resend_id(count.event_id, event["reported_at"]),
        count.site_id,
        count.site_kind,
        count.municipality_code,
        count.mode,
        count.direction,
        count.interval_start,
        count.interval_end,
        count.count,
        count.delay_hours,
        count.revision,
        count.producer,
        count.reported_at,
        digest,
    )


# The current stored count of each staged count key (usually none: a new
# count), found by the current-count index in the key's month partition
# (one probe per key, as `Staging.stored` probes ids).
_CURRENT_OF_STAGED = text(
    f"""
    SELECT c.*
    FROM (SELECT DISTINCT site_id, mode, direction, interval_start, interval_end
          FROM {_STAGE}) AS k
    CROSS JOIN LATERAL (
        SELECT * FROM mobility_count m
        WHERE m.is_current AND m.interval_start = k.interval_start
            AND m.site_id = k.site_id AND m.mode = k.mode
            AND m.direction = k.direction AND m.interval_end = k.interval_end
        LIMIT 1
    ) AS c
    """
)


def _rivals(conn: Connection, again: Collection[CountKey]) -> list[Identity]:
    """The current stored counts of the count keys `again` (re-sent facts)."""
    rows = conn.execute(_CURRENT_OF_STAGED).mappings()
    return [
        stored_identity(_KIND, r["event_id"], r["payload_sha256"], _count_of(r))
        for r in rows
        if _key_of(r) in again
    ]


def _key_of(r: Mapping[Any, Any]) -> CountKey:
    return (
        r["site_id"],
        r["mode"],
        r["direction"],
        r["interval_start"],
        r["interval_end"],
    )


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


def _site_owners(conn: Connection) -> dict[str, str]:
    """The municipality of each staged site known from its first stored count."""
    rows = conn.execute(
        text(
            "SELECT site_id, municipality_code FROM counting_site WHERE site_id "
            f"IN (SELECT site_id FROM {_STAGE})"
        )
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
    grants: Grants
    owners: dict[str, str] | None = None
    #: Sites first seen in this batch, as `counting_site` rows.
    first: list[dict[str, str]] = field(default_factory=list)
    #: The owners as read, before this batch's first counts added theirs.
    read: dict[str, str] | None = None

    def admit(self, event: Mapping[str, Any]) -> FieldIssue | None:
        if self.owners is None:
            self.read = _site_owners(self.conn)
            self.owners = dict(self.read)
        site = str(event["site_id"])
        issue = site_owner_issue(self.grants, event, self.owners.get(site))
        if issue is None and site not in self.owners:
            self.owners[site] = str(event["municipality_code"])
            self.first.append(
                {"s": site, "m": self.owners[site], "e": str(event["event_id"])}
            )
        return issue

    def still_owned(self, conn: Connection) -> bool:
        """Whether the owners read (if any were) are the stored ones now."""
        return self.read is None or _site_owners(conn) == self.read

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
    draft: bool = True,
) -> StoredCounts:
    """Insert count events idempotently and move `is_current` to restatements.

    `now` is the caller's clock: partitions are made only inside the horizon
    (`ensure_partitions`). A count that would move its site to another
    municipality is refused unless `grants` let its producer write the
    site's (`klimapuls.core.authorisation.site_owner_issue`). Takes the
    count lock (see `lock_counts`) for the rest of the transaction. With
    `draft` the batch is judged before the lock too (see `_draft`): a caller
    whose last batch was `replayed` passes False, as a replay's draft is
    never used.
    """
    result = StoredCounts()
    if not events:
        return result
    # Everything that needs no other writer's rows comes before the lock,
    # which serialises the writers: the identities, and the staging (the
    # staging table is this session's own).
    identities = [identity_of(_KIND, event) for event in events]
    counts = [_count_in(identity) for identity in identities]
    _STAGING.stage(
        conn,
        (
            _staged_row(i, count, event, identity.digest)
            for i, (count, event, identity) in enumerate(
                zip(counts, events, identities, strict=True)
            )
        ),
    )
    drafted = _draft(conn, events, identities, grants) if draft else None
    lock_counts(conn)
    known = _STAGING.stored(conn, "mobility_count", _KIND)
    result.replayed = bool(known)
    if drafted is not None and not known and drafted[1].still_owned(conn):
        result.judgements, sites = drafted
    else:
        stored = {identity.origin for identity in known}
        again = {c.key for c in compress(counts, may_be_resent(events, stored))}
        ledger = Ledger.of(_KIND, known, _rivals(conn, again) if again else [])
        result.judgements, sites = _judged(conn, ledger, events, identities, grants)
    sites.record()
    # (position in the batch, the id it is stored under, its count)
    new: list[tuple[int, str, MobilityCount]] = []
    for i, judgement in enumerate(result.judgements):
        if judgement.verdict is Verdict.NEW:
            # A re-sent fact is stored under the id of its new report.
            new.append((i, judgement.identity.event_id, counts[i]))
        elif judgement.verdict is Verdict.DUPLICATE:
            result.duplicates += 1
    if not new:
        return result
    result.partitions = ensure_partitions(
        conn, [c.interval_start for _, _, c in new], now
    )
    winners = _winners(new)
    losers, restating = _losers(conn, winners)
    if losers:
        conn.execute(
            text(
                "UPDATE mobility_count SET is_current = false "
                "WHERE event_id = :e AND interval_start = :s"
            ),
            losers,
        )
    result.restated = len(losers)
    current = {winner[1] for winner in winners.values()}
    conn.execute(
        text(_INSERT_STAGED),
        {"unlike": as_json(_unlike(events, result.judgements, current, restating))},
    )
    result.added = len(new)
    return result


def _unlike(
    events: Sequence[dict[str, Any]],
    judgements: Sequence[Judgement],
    current: Collection[str],
    restating: Collection[str],
) -> list[dict[str, Any]]:
    """The staged counts not stored as most are (`_INSERT_STAGED`).

    Most are new, stored under their own id, current and restating nothing:
    only the others go over (a few per batch), each with what it is stored
    as, or `skip` when it is not stored at all.
    """
    unlike: list[dict[str, Any]] = []
    for i, (event, judgement) in enumerate(zip(events, judgements, strict=True)):
        if judgement.verdict is not Verdict.NEW:
            unlike.append({"i": i, "skip": True})
            continue
        eid = judgement.identity.event_id
        if eid != event["event_id"] or eid not in current or eid in restating:
            unlike.append(
                {"i": i, "e": eid, "c": eid in current, "r": eid in restating}
            )
    return unlike


def _draft(
    conn: Connection,
    events: Sequence[dict[str, Any]],
    identities: Sequence[Identity],
    grants: Grants,
) -> tuple[list[Judgement], _SiteOwners] | None:
    """The batch judged before the count lock, as if none of it were stored.

    Usually so (always in a backfill): then, under the lock, the draft
    stands if nothing of the batch is stored and its sites' owners are
    those read here (`_SiteOwners.still_owned`), and judging (a fifth of a
    batch's time under the lock) no longer holds up the other writers. An
    id given twice in the batch needs its slot's stored reports: no draft.
    """
    if any(may_be_resent(events, ())):
        return None
    return _judged(conn, Ledger.of(_KIND, []), events, identities, grants)


def _judged(
    conn: Connection,
    ledger: Ledger,
    events: Sequence[dict[str, Any]],
    identities: Sequence[Identity],
    grants: Grants,
) -> tuple[list[Judgement], _SiteOwners]:
    """Each event judged by `ledger`, its site's owner admitting it."""
    sites = _SiteOwners(conn, grants)
    judgements = [
        ledger.judge(event, sites.admit, identity=identity)
        for event, identity in zip(events, identities, strict=True)
    ]
    return judgements, sites


def _count_in(identity: Identity) -> MobilityCount:
    """The count an identity was built from (`identity_of` builds it once)."""
    if not isinstance(identity.fact, MobilityCount):
        raise TypeError(f"not a count's identity: {identity.key}")  # a bug
    return identity.fact


Winner = tuple[tuple[int, datetime, str], str]  # rank, stored event id


def _winners(new: Sequence[tuple[int, str, MobilityCount]]) -> dict[CountKey, Winner]:
    """The highest-ranked new count of each count key."""
    winners: dict[CountKey, Winner] = {}
    for _, event_id, count in new:
        # A re-send ranks under the id it is stored with.
        rank = (count.revision, count.reported_at, event_id)
        seen = winners.get(count.key)
        if seen is None or wins_over(rank, seen[0]):
            winners[count.key] = (rank, event_id)
    return winners


def _losers(
    conn: Connection, winners: dict[CountKey, Winner]
) -> tuple[list[dict[str, Any]], set[str]]:
    """Stored current counts a new winner restates, and those winners' ids.

    Drops winners that lose: a late, older restatement is stored but not
    current, and its key leaves `winners`.
    """
    losers: list[dict[str, Any]] = []
    restating: set[str] = set()
    for row in conn.execute(_CURRENT_OF_STAGED).mappings():
        key = _key_of(row)
        winner = winners.get(key)
        if winner is None:
            continue
        stored_rank = (row["revision"], row["reported_at"], row["event_id"])
        if wins_over(winner[0], stored_rank):
            losers.append({"e": row["event_id"], "s": row["interval_start"]})
            restating.add(winner[1])
        else:
            del winners[key]
    return losers, restating


# The new counts go from the staging table (no second transfer); the
# per-site feeds and per-minute receipts the boards read (`board.data_origin`,
# `board.feed_freshness`, `board.events_received_minutely`) are summed from
# the same rows in the same statement, so no panel scans the raw counts.
# `received_at` is the transaction's `now()`, as on the count rows. Whether a
# row is synthetic is decided once, as it is returned (not once per sum).
_SYNTHETIC = "producer ILIKE '%synthetic%'"
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
    "restates",
    "producer",
    "reported_at",
    "payload_sha256",
)
_INSERT_STAGED = f"""
WITH added AS (
    INSERT INTO mobility_count ({", ".join(_COPIED)})
    SELECT coalesce(n.e, s.event_id), s.site_id, s.site_kind, s.municipality_code,
        s.mode, s.direction, s.interval_start, s.interval_end, s.count,
        s.delay_hours, s.revision, coalesce(n.c, true), coalesce(n.r, false),
        s.producer, s.reported_at, s.payload_sha256
    FROM {_STAGE} s
    LEFT JOIN json_to_recordset(CAST(:unlike AS json))
        AS n(i integer, e text, c boolean, r boolean, skip boolean)
        ON n.i = s.idx
    WHERE n.skip IS NOT TRUE
    RETURNING site_id, municipality_code, {_SYNTHETIC} AS synthetic, interval_end
), feeds AS (
    INSERT INTO mobility_feed AS f (site_id, municipality_code, events,
        synthetic_events, last_period, last_received)
    SELECT site_id, min(municipality_code), count(*),
        count(*) FILTER (WHERE synthetic), max(interval_end), now()
    FROM added GROUP BY site_id
    ON CONFLICT (site_id) DO UPDATE SET
        municipality_code = least(f.municipality_code, excluded.municipality_code),
        events = f.events + excluded.events,
        synthetic_events = f.synthetic_events + excluded.synthetic_events,
        last_period = greatest(f.last_period, excluded.last_period),
        last_received = greatest(f.last_received, excluded.last_received)
)
INSERT INTO mobility_receipt AS r (minute, synthetic, events, last_received)
SELECT date_trunc('minute', now()), synthetic, count(*), now()
FROM added GROUP BY 2
ON CONFLICT (minute, synthetic) DO UPDATE SET
    events = r.events + excluded.events,
    last_received = greatest(r.last_received, excluded.last_received)
"""


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


def rebuild_feeds(conn: Connection) -> None:
    """Recompute the per-site feed and per-minute receipt rows from every count."""
    lock_counts(conn)
    for statement in _REBUILD_FEEDS:
        conn.execute(text(statement))


# An hour row is kept per (hour, site, municipality, mode). A refresh looks
# at the (hour, site) pairs of the counts above the watermark. Where none of
# those counts restates a stored count or is itself restated, the hour rows
# only gain: the counts' sums are added to them (an upsert). Where one does,
# a count already summed may have to leave, so the pair's hour rows are
# summed again from the current counts up to the refresh's `seq` (a
# restatement shares its site and hour with the count it replaces). A count
# restated after a refresh looked at it is found by its restatement, which
# is marked `restates` and comes in a later refresh: that one sums the hour
# again, whatever the rows held.
#
# Every change of an hour row goes to the session's delta table: its trips,
# delay and counts signed, and `hours` +1 for a new row, -1 for a removed
# one, 0 for one that grew. The rollups kept from hours move by those
# deltas, and days and years are rebuilt only for the (bucket, municipality,
# mode) groups holding a delta, so a scattered restatement re-adds a few
# groups, not every site of its day. Nothing goes through Python: a refresh
# is a handful of statements. The lateral subqueries make PostgreSQL probe
# the indexes per group instead of hashing whole partitions.
# Named anew when its columns change: a pooled session keeps its temp tables.
_DELTA = "mobility_hour_change"
_CREATE_DELTA = f"""
CREATE TEMP TABLE IF NOT EXISTS {_DELTA} (hours integer, bucket timestamptz,
    municipality_code text, mode text, trips bigint, delay_hours double precision,
    counts bigint, site_id text) ON COMMIT DELETE ROWS
"""
_ROWS = "bucket, municipality_code, mode, trips, delay_hours, counts"
#: SQL: the hour bin of the count row in scope (`interval_start`).
_HOUR_OF = f"date_bin('1 hour', interval_start, {_HOUR_ORIGIN})"
#: The counts above the watermark, summed per hour row (hour, site,
#: municipality, mode); `again`: the row's (hour, site) pair is summed again.
#: Found once per refresh, in one pass over the counts, so that every
#: statement after sees the same rows (a writer may restate a count
#: meanwhile: its own refresh sums again).
_TOUCHED = "mobility_hour_fresh"
_CREATE_TOUCHED = f"""
CREATE TEMP TABLE IF NOT EXISTS {_TOUCHED} (bucket timestamptz, site_id text,
    municipality_code text, mode text, trips bigint, delay_hours double precision,
    counts bigint, again boolean) ON COMMIT DELETE ROWS
"""
_FIND_TOUCHED = f"""
WITH found AS (
    INSERT INTO {_TOUCHED} ({_ROWS}, site_id, again)
    SELECT {_ROWS}, site_id, bool_or(again) OVER (PARTITION BY bucket, site_id)
    FROM (
        SELECT {_HOUR_OF} AS bucket, municipality_code, mode, sum(count) AS trips,
            sum(delay_hours) AS delay_hours, count(*) AS counts, site_id,
            bool_or(restates OR NOT is_current) AS again
        FROM mobility_count WHERE seq > :low AND seq <= :high
        GROUP BY 1, site_id, municipality_code, mode
    ) AS g
    RETURNING bucket, again
)
SELECT count(DISTINCT bucket), bool_or(again) FROM found
"""
_SUM_AGAIN = (
    f"""
    WITH removed AS (
        DELETE FROM mobility_hourly h USING {_TOUCHED} t
        WHERE t.again AND h.bucket = t.bucket AND h.site_id = t.site_id
        RETURNING h.{_ROWS.replace(", ", ", h.")}, h.site_id
    )
    INSERT INTO {_DELTA}
    SELECT -1, bucket, municipality_code, mode, -trips, -delay_hours, -counts, site_id
    FROM removed
    """,
    f"""
    WITH added AS (
        INSERT INTO mobility_hourly ({_ROWS}, site_id)
        SELECT t.bucket, c.municipality_code, c.mode, c.trips, c.delay_hours,
            c.counts, t.site_id
        FROM (SELECT DISTINCT bucket, site_id FROM {_TOUCHED} WHERE again) AS t
        CROSS JOIN LATERAL (
            SELECT municipality_code, mode, sum(count) AS trips,
                sum(delay_hours) AS delay_hours, count(*) AS counts
            FROM mobility_count
            WHERE is_current AND site_id = t.site_id
                AND interval_start >= t.bucket
                AND interval_start < t.bucket + interval '1 hour'
                AND seq <= :high
            GROUP BY municipality_code, mode
        ) AS c
        RETURNING {_ROWS}, site_id
    )
    INSERT INTO {_DELTA} SELECT 1, * FROM added
    """,
)
# The join below reads the hour rows as they were before this statement (one
# snapshot for all its parts): a row not there yet is new.
_ADD = f"""
WITH grown AS (
    INSERT INTO mobility_hourly AS h ({_ROWS}, site_id)
    SELECT {_ROWS}, site_id FROM {_TOUCHED} WHERE NOT again
    ON CONFLICT (bucket, site_id, mode, municipality_code) DO UPDATE SET
        trips = h.trips + excluded.trips,
        -- as sum() does: a missing delay adds nothing, none at all is none
        delay_hours = CASE
            WHEN h.delay_hours IS NULL THEN excluded.delay_hours
            WHEN excluded.delay_hours IS NULL THEN h.delay_hours
            ELSE h.delay_hours + excluded.delay_hours END,
        counts = h.counts + excluded.counts
)
INSERT INTO {_DELTA}
SELECT CASE WHEN h.bucket IS NULL THEN 1 ELSE 0 END, f.bucket, f.municipality_code,
    f.mode, f.trips, f.delay_hours, f.counts, f.site_id
FROM {_TOUCHED} f
LEFT JOIN mobility_hourly h ON h.bucket = f.bucket AND h.site_id = f.site_id
    AND h.mode = f.mode AND h.municipality_code = f.municipality_code
WHERE NOT f.again
"""


def _local(unit: str, column: str) -> str:
    """SQL: the start of the Danish local `unit` (day, month, year) holding `column`."""
    return f"date_trunc('{unit}', {column}, {_ZONE})"


def _local_next(unit: str, column: str) -> str:
    """SQL: the start of the next local `unit` (stepped in local time: DST)."""
    start = _local(unit, column)
    return (
        f"(({start} AT TIME ZONE {_ZONE}) + interval '1 {unit}') AT TIME ZONE {_ZONE}"
    )


def _groups(unit: str) -> str:
    """SQL: the (local `unit`, municipality, mode) groups holding a delta row."""
    return f"""(SELECT DISTINCT {_local(unit, "bucket")} AS bucket,
        {_local_next(unit, "bucket")} AS until, municipality_code, mode
        FROM {_DELTA}) AS t"""


_ROLLUP_DAYS = (
    f"""
    DELETE FROM mobility_daily d USING {_groups("day")}
    WHERE d.bucket = t.bucket AND d.municipality_code = t.municipality_code
        AND d.mode = t.mode
    """,
    f"""
    INSERT INTO mobility_daily ({_ROWS}, month_mask)
    SELECT t.bucket, t.municipality_code, t.mode, h.trips, h.delay_hours,
        h.counts,
        1 << (extract(month FROM t.bucket AT TIME ZONE {_ZONE})::int - 1)
    FROM {_groups("day")}
    CROSS JOIN LATERAL (
        SELECT sum(trips) AS trips, sum(delay_hours) AS delay_hours,
            sum(counts) AS counts
        FROM mobility_hourly
        WHERE municipality_code = t.municipality_code AND mode = t.mode
            AND bucket >= t.bucket AND bucket < t.until
        HAVING count(*) > 0
    ) AS h
    """,
)
_ROLLUP_YEARS = (
    f"""
    DELETE FROM mobility_yearly y USING {_groups("year")}
    WHERE y.bucket = t.bucket AND y.municipality_code = t.municipality_code
        AND y.mode = t.mode
    """,
    f"""
    INSERT INTO mobility_yearly ({_ROWS}, month_mask)
    SELECT t.bucket, t.municipality_code, t.mode, d.trips, d.delay_hours,
        d.counts, d.month_mask
    FROM {_groups("year")}
    CROSS JOIN LATERAL (
        SELECT sum(trips) AS trips, sum(delay_hours) AS delay_hours,
            sum(counts) AS counts, bit_or(month_mask) AS month_mask
        FROM mobility_daily
        WHERE municipality_code = t.municipality_code AND mode = t.mode
            AND bucket >= t.bucket AND bucket < t.until
        HAVING count(*) > 0
    ) AS d
    """,
)

#: Rollups kept from the deltas of the hour rows a refresh rewrites: table ->
#: (key columns, the key of an hour row in SQL). Each has `trips`, `counts`
#: and `hours` (hour rows summed; a key left with none is deleted), so the
#: result equals summing the hours (`_REBUILD`).
_FROM_HOURS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mobility_site_monthly": (
        ("bucket", "site_id", "municipality_code", "mode"),
        (_local("month", "bucket"), "site_id", "municipality_code", "mode"),
    ),
    "mobility_mode_hourly": (
        ("bucket", "municipality_code", "mode"),
        ("bucket", "municipality_code", "mode"),
    ),
    "mobility_region_hourly": (("bucket", "mode"), ("bucket", "mode")),
}


def _from_hours_sql(
    table: str, keys: tuple[str, ...], of_hour: tuple[str, ...]
) -> tuple[str, str]:
    columns = ", ".join(keys)
    selected = ", ".join(
        f"{sql} AS {key}" for key, sql in zip(keys, of_hour, strict=True)
    )
    upsert = f"""
    INSERT INTO {table} AS m ({columns}, trips, counts, hours)
    SELECT {columns}, sum(trips), sum(counts), sum(hours)
    FROM (SELECT {selected}, trips, counts, hours FROM {_DELTA}) AS t
    GROUP BY {columns}
    ON CONFLICT ({columns}) DO UPDATE SET
        trips = m.trips + excluded.trips, counts = m.counts + excluded.counts,
        hours = m.hours + excluded.hours
    """
    match = " AND ".join(f"m.{k} = t.{k}" for k in keys)
    empty = f"""
    DELETE FROM {table} m USING (SELECT DISTINCT {selected} FROM {_DELTA}) AS t
    WHERE {match} AND m.hours = 0
    """
    return upsert, empty


_BUCKETS = f"""
SELECT count(*), count(DISTINCT {_local("day", "bucket")}),
    count(DISTINCT {_local("year", "bucket")})
FROM {_DELTA}
"""


def _advance(conn: Connection, watermark: int) -> None:
    conn.execute(
        text(
            "UPDATE mobility_rollup_state SET watermark = :w, refreshed_at = now() "
            "WHERE name = :n"
        ),
        {"w": watermark, "n": _STATE},
    )


def refresh_rollups(conn: Connection, upto: int | None = None) -> RollupRefresh:
    """Roll up what arrived since the watermark (hour, then day, then year).

    `upto` is a `committed_seq` read in a transaction before this one: the
    refresh then holds only the rollup lock, and count writers go on while
    it works (their rows are above `upto`, for the next refresh). Without
    it the refresh holds the count lock too, until its commit. A refresh
    with nothing new reads one index entry per partition and writes
    nothing. With TimescaleDB this does nothing: see
    `refresh_continuous_aggregates`.
    """
    began = time.perf_counter()
    if rollup_backend(conn) != "tables":
        return RollupRefresh(0, 0)
    lock_rollups(conn)
    if upto is None:
        lock_counts(conn)
    low = int(
        conn.execute(
            text("SELECT watermark FROM mobility_rollup_state WHERE name = :n"),
            {"n": _STATE},
        ).scalar_one()
    )
    high = conn.execute(
        text(
            "SELECT max(seq) FROM mobility_count WHERE seq > :w "
            "AND (CAST(:upto AS bigint) IS NULL OR seq <= :upto)"
        ),
        {"w": low, "upto": upto},
    ).scalar()
    if high is None:
        return RollupRefresh(low, low, seconds=time.perf_counter() - began)
    conn.execute(text(_CREATE_DELTA))
    conn.execute(text(_CREATE_TOUCHED))
    seqs = {"low": low, "high": high}
    hours, again = conn.execute(text(_FIND_TOUCHED), seqs).one()
    if again:
        for statement in _SUM_AGAIN:
            conn.execute(text(statement), seqs)
    conn.execute(text(_ADD))
    deltas, days, years = conn.execute(text(_BUCKETS)).one()
    if deltas:
        for table, (keys, of_hour) in _FROM_HOURS.items():
            for statement in _from_hours_sql(table, keys, of_hour):
                conn.execute(text(statement))
        for statement in (*_ROLLUP_DAYS, *_ROLLUP_YEARS):
            conn.execute(text(statement))
    # Emptied at commit anyway; a second refresh in one transaction starts afresh.
    conn.execute(text(f"DELETE FROM {_DELTA}"))
    conn.execute(text(f"DELETE FROM {_TOUCHED}"))
    _advance(conn, int(high))
    return RollupRefresh(
        low,
        int(high),
        hours=int(hours),
        days=int(days),
        years=int(years),
        seconds=time.perf_counter() - began,
    )


_REBUILD = (
    "TRUNCATE mobility_hourly, mobility_daily, mobility_yearly, "
    "mobility_site_monthly, mobility_mode_hourly, mobility_region_hourly",
    f"""
    INSERT INTO mobility_hourly
        (bucket, municipality_code, site_id, mode, trips, delay_hours, counts)
    SELECT {_HOUR_OF}, municipality_code,
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
    lock_rollups(conn)
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
