"""What the alert rules read from other owners' tables (read-only).

Readers only: `co2_account` (co2), `mobility_feed` (mobility: one row per
counting site), `fleet_status` (fleet), `initiative*` (initiatives),
`dead_letter` (deadletter), `restatement` (targets: the restated figures
it derives from its facts, indexed on `restated_at` within a scope) and the
event tables' producers (in the dead-letter window, by `received_at`,
indexed on the large tables). The
alerts service hands these to `klimapuls.core.alerting`, as `alerts
--offline` does with the same inputs folded from event files.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy import Connection, select, text

from klimapuls.core.alerting import (
    FEED_CO2,
    FEED_FLEET,
    FEED_SITE,
    DeadLetterCount,
    FeedStatus,
    producer_of,
)
from klimapuls.core.initiatives import Initiative, StatusReport
from klimapuls.core.restatements import Restatement
from klimapuls.storage.models_initiatives import (
    InitiativeRow,
    InitiativeStatusReportRow,
    InitiativeTovholderRow,
)
from klimapuls.storage.models_restatements import RestatementRow

__all__ = [
    "dead_letter_counts",
    "feeds",
    "initiatives_and_reports",
    "newest_vintages",
    "restatements",
]


def _day(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def feeds(conn: Connection) -> list[FeedStatus]:
    """When every CO2 account, counting site and fleet operator last reported."""
    found = [
        FeedStatus(FEED_CO2, code, code, _day(vintage), year)
        for code, year, vintage in conn.execute(
            text(
                "SELECT municipality_code, max(year), max(vintage) "
                "FROM co2_account GROUP BY municipality_code"
            )
        )
    ]
    found += [
        FeedStatus(FEED_SITE, site, code, seen)
        for site, code, seen in conn.execute(
            # One row per site, kept by the mobility service as it stores
            # counts (migration 0013): no scan of the raw counts.
            text("SELECT site_id, municipality_code, last_period FROM mobility_feed")
        )
    ]
    found += [
        FeedStatus(FEED_FLEET, operator, operator, _day(day))
        for operator, day in conn.execute(
            text("SELECT operator, max(date) FROM fleet_status GROUP BY operator")
        )
    ]
    return found


def newest_vintages(conn: Connection) -> list[tuple[str, int, date]]:
    """(municipality, year, newest vintage) of every account year."""
    rows = conn.execute(
        text(
            "SELECT municipality_code, year, max(vintage) FROM co2_account "
            "GROUP BY municipality_code, year"
        )
    )
    return [(code, year, vintage) for code, year, vintage in rows]


_EVENT_TABLES = (
    "co2_account",
    "target_version",
    "fleet_status",
    "mobility_count",
    "initiative_status_report",
)


def dead_letter_counts(conn: Connection, since: datetime) -> list[DeadLetterCount]:
    """Accepted and rejected events of every producer received since `since`."""
    accepted: dict[str, int] = {}
    for table in _EVENT_TABLES:
        for producer, n in conn.execute(
            text(
                f"SELECT producer, count(*) FROM {table} "
                "WHERE received_at >= :since GROUP BY producer"
            ),
            {"since": since},
        ):
            accepted[producer] = accepted.get(producer, 0) + n
    rejected: dict[str, int] = {}
    for payload, encoding in conn.execute(
        text(
            "SELECT payload, payload_encoding FROM dead_letter "
            "WHERE received_at >= :since"
        ),
        {"since": since},
    ):
        producer = producer_of(payload if encoding == "utf-8" else "")
        rejected[producer] = rejected.get(producer, 0) + 1
    return [
        DeadLetterCount(p, accepted.get(p, 0), rejected.get(p, 0))
        for p in sorted(accepted.keys() | rejected.keys())
    ]


def initiatives_and_reports(
    conn: Connection,
) -> tuple[list[Initiative], list[StatusReport]]:
    """Every listed initiative (reference and first seen in reports) and report."""
    tovholdere: dict[str, list[str]] = {}
    for link in conn.execute(
        select(InitiativeTovholderRow).order_by(InitiativeTovholderRow.position)
    ):
        tovholdere.setdefault(link.initiative_id, []).append(link.tovholder)
    listed = [
        Initiative(
            initiative_id=r.initiative_id,
            name=r.name,
            programme=r.programme,
            group=r.group_name,
            tovholdere=tuple(tovholdere.get(r.initiative_id, ())),
            since=r.since,
        )
        for r in conn.execute(
            select(InitiativeRow).order_by(InitiativeRow.initiative_id)
        )
    ]
    reports = [
        StatusReport(
            event_id=r.event_id,
            initiative_id=r.initiative_id,
            round=r.round,
            status=r.status,
            tovholdere=tuple(r.tovholdere),
            reported_at=r.reported_at,
            effective_date=r.effective_date,
        )
        for r in conn.execute(select(InitiativeStatusReportRow))
    ]
    return listed, reports


def restatements(conn: Connection, since: datetime) -> list[Restatement]:
    """The figures restated after `since`, as the targets service wrote them.

    Only loads rows: which of them a target alert carries is the core's
    `klimapuls.core.alerting.restatements_of`.
    """
    table = RestatementRow.__table__
    # `change_pct` is derived (a property of `Restatement`), not loaded.
    columns = [c for c in table.c if c.name != "change_pct"]
    found = conn.execute(select(*columns).where(table.c.restated_at > since))
    return [Restatement(**row) for row in found.mappings()]
