"""Query times on a production-sized database: target progress and every panel.

    python bench/queries.py [--sites 500] [--days 365] [--years 30] [--runs 5] [--json]
    klimapuls bench --queries [...]          (the same, from a checkout)

Starts an embedded PostgreSQL, migrates a fresh database and fills it through
the tables the services own, with set-based SQL where the volume is large:

- CO2 accounts: YEARS years x 29 municipalities x 6 sectors, every figure in
  one vintage and the last five years restated in a newer vintage; the
  emission series written by the CO2 service's own `write_series`;
- targets: the seeded ones and the 29 synthetic DK2020 targets, stored by the
  targets service's handler; fleet snapshots and initiative reports of the
  simulator through their handlers (small);
- mobility: DAYS days of 15-minute counts from SITES counting sites (one mode
  and direction per site: 35,040 rows a site-year, 17.5 M for 500 sites),
  inserted month by month into the monthly partitions `ensure_partitions`
  makes, with some restated counts, then `rebuild_rollups`,
  `rebuild_feeds` and the modal split as the mobility service writes them;
- progress rows by the targets service's full recompute (`recompute`).

Then each query runs once to warm up and RUNS times more (once more when
the warm-up took over a second); the median is printed (rows, ms): every
target's progress as `klimapuls progress` computes it from the database
(`database_rows`), and every panel and template-variable query of every
board with Grafana's macros expanded (`klimapuls.boards.macros`) for the
last 30 days and for the whole series. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from _harness import _fresh_database
from sqlalchemy import Connection, Engine, TextClause, text

from klimapuls.boards import all_boards
from klimapuls.boards.macros import TimeRange, expand
from klimapuls.co2.handlers import write_series
from klimapuls.core.batch import Incoming
from klimapuls.core.mobility import MODES
from klimapuls.core.progress import evaluate_all
from klimapuls.core.reference import municipality_codes
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import write_modal_splits
from klimapuls.process import no_interruptions, stops_not_dropped
from klimapuls.simulator import dk2020_demo_targets, fleet_events, initiative_events
from klimapuls.stack import EmbeddedPostgres
from klimapuls.storage import mobility as counts
from klimapuls.storage.db import create_db_engine, in_transaction
from klimapuls.targets.handlers import TargetsHandler, recompute

#: Counts run for DAYS days from here; the clock of every write and query.
START = datetime(2025, 1, 1, tzinfo=UTC)
SECTORS = ("energy", "transport", "agriculture", "industry", "waste", "other")
#: The goal of issue 12: each query under this.
GOAL_MS = 100.0


@dataclass
class Timing:
    """One query's median time."""

    query: str
    rows: int
    ms: float
    runs: int


@dataclass
class Result:
    """What `--json` prints."""

    sites: int
    days: int
    years: int
    count_rows: int
    build_s: dict[str, float]
    timings: list[Timing]
    over_goal: list[str]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the data -------------------------------------------------------------------


_ACCOUNTS = """
INSERT INTO co2_account (event_id, municipality_code, year, sector, subsector,
    tonnes_co2e, vintage, source, producer, reported_at, received_at,
    payload_sha256)
SELECT format('bench:co2:%s:%s:%s:%s', m, y, s, v), m, y, s, NULL,
    round((1000 + abs(hashtext(m || y || s || v)) % 90000)::numeric, 1),
    v, 'bench', 'bench', v::timestamptz + interval '1 day',
    v::timestamptz + interval '1 day 1 minute',
    md5(format('%s:%s:%s:%s', m, y, s, v))
FROM unnest(CAST(:codes AS text[])) AS m
CROSS JOIN generate_series(CAST(:first AS int), CAST(:last AS int)) AS y
CROSS JOIN unnest(CAST(:sectors AS text[])) AS s
CROSS JOIN LATERAL (
    SELECT make_date(CAST(:last AS int), 3, 1) AS v
    UNION ALL SELECT make_date(CAST(:last AS int), 9, 1) WHERE y > :last - 5
) AS vintages
"""

# One mode and direction per site; counts follow the hour of the day.
_COUNTS = """
INSERT INTO mobility_count (event_id, site_id, site_kind, municipality_code,
    mode, direction, interval_start, interval_end, count, delay_hours,
    revision, is_current, producer, reported_at, received_at, payload_sha256)
SELECT 'bench:' || extract(epoch FROM t)::bigint || ':' || lpad(s::text, 4, '0'),
    'site-' || s, NULL, (CAST(:codes AS text[]))[1 + s % 29],
    (CAST(:modes AS text[]))[1 + s % :n_modes], 'in', t,
    t + interval '15 minutes',
    (abs(hashint8(extract(epoch FROM t)::bigint * 1000 + s)) % 120)
        * (1 + extract(hour FROM t)::int % 12),
    CASE WHEN s % :n_modes = 0 THEN (s % 7) * 0.25 END,
    0, true, 'bench', t + interval '20 minutes', t + interval '21 minutes',
    md5(extract(epoch FROM t)::bigint || ':' || s)
FROM generate_series(CAST(:month AS timestamptz),
        CAST(:until AS timestamptz) - interval '15 minutes',
        interval '15 minutes') AS t
CROSS JOIN generate_series(0, :sites - 1) AS s
ORDER BY t, s
"""

# A restatement as the service makes it: the old row stops being current and
# a newer revision of the same key is stored (every 25th site, one day).
_RESTATE = (
    """
    UPDATE mobility_count SET is_current = false
    WHERE interval_start >= :day AND interval_start < CAST(:day AS timestamptz)
        + interval '1 day' AND is_current AND revision = 0
        AND CAST(substr(site_id, 6) AS int) % 25 = 0
    """,
    """
    INSERT INTO mobility_count (event_id, site_id, site_kind, municipality_code,
        mode, direction, interval_start, interval_end, count, delay_hours,
        revision, is_current, producer, reported_at, received_at,
        payload_sha256)
    SELECT event_id || '-r1', site_id, site_kind, municipality_code, mode,
        direction, interval_start, interval_end, count + 7, delay_hours, 1, true,
        producer, reported_at + interval '3 days',
        received_at + interval '3 days', md5(event_id || '-r1')
    FROM mobility_count
    WHERE interval_start >= :day AND interval_start < CAST(:day AS timestamptz)
        + interval '1 day' AND NOT is_current AND revision = 0
    """,
)


def _messages(kind: str, bodies: list[Any]) -> list[Incoming]:
    return [
        Incoming(kind, json.dumps(b).encode(), f"bench:{kind}:{i}")
        for i, b in enumerate(bodies)
    ]


def _before(body: Any, now: datetime) -> bool:
    """A well-formed simulated event reported by `now` (the services' horizon)."""
    return (
        isinstance(body, dict)
        and datetime.fromisoformat(str(body.get("reported_at"))) <= now
    )


def _months(first: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    spans = []
    month = first
    while month < until:
        following = (month + timedelta(days=32)).replace(day=1)
        spans.append((month, min(following, until)))
        month = following
    return spans


def fill(engine: Engine, sites: int, days: int, years: int) -> dict[str, float]:
    """Fill a migrated database; return seconds per step."""
    now = START + timedelta(days=days)
    clock = lambda: now  # noqa: E731
    codes = list(municipality_codes())
    spent: dict[str, float] = {}

    def step(name: str, work: Callable[[Connection], Any]) -> None:
        began = time.perf_counter()
        in_transaction(engine, work)
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - began
        _log(f"  {name}: {time.perf_counter() - began:.1f} s")

    last = now.year - 1
    step(
        "co2 accounts",
        lambda c: c.execute(
            text(_ACCOUNTS),
            {"codes": codes, "sectors": list(SECTORS), "first": last - years + 1}
            | {"last": last},
        ),
    )
    step("emission series", write_series)

    began = time.perf_counter()
    TargetsHandler(engine, clock).handle(
        _messages("target", [e.body for e in dk2020_demo_targets()])
    )
    fleet = [
        e.body
        for e in fleet_events(2045, START.date())
        if e.kind == "fleet_status" and _before(e.body, now)
    ]
    FleetHandler(engine, clock).handle(_messages("fleet_status", fleet))
    initiatives = [
        e.body
        for e in initiative_events(2045, START.date())
        if e.kind == "initiative_status" and _before(e.body, now)
    ]
    handler = InitiativeHandler(engine, clock)
    for i in range(0, len(initiatives), 500):
        handler.handle(_messages("initiative_status", initiatives[i : i + 500]))
    spent["targets, fleet, initiatives"] = time.perf_counter() - began
    _log(f"  targets, fleet, initiatives: {spent['targets, fleet, initiatives']:.1f} s")

    def month_of_counts(conn: Connection, month: datetime, until: datetime) -> None:
        counts.lock_counts(conn)
        counts.ensure_partitions(conn, [month], now)
        conn.execute(
            text(_COUNTS),
            {
                "codes": codes,
                "modes": list(MODES),
                "n_modes": len(MODES),
                "sites": sites,
                "month": month,
                "until": until,
            },
        )

    for month, until in _months(START, now):
        step("counts", partial(month_of_counts, month=month, until=until))
    day = START + timedelta(days=days // 2)
    step(
        "restatements",
        lambda c: [c.execute(text(sql), {"day": day}) for sql in _RESTATE],
    )
    step("analyze", lambda c: c.execute(text("ANALYZE")))
    step("rollups", counts.rebuild_rollups)
    step("feeds", counts.rebuild_feeds)
    step("modal split", lambda c: write_modal_splits(c, now))
    step("progress", lambda c: recompute(c, now))
    step("analyze", lambda c: c.execute(text("ANALYZE")))
    return spent


# --- the queries ----------------------------------------------------------------


def board_queries(now: datetime) -> list[tuple[str, str]]:
    """(name, SQL) of every panel and variable query, for two time ranges."""
    spans = {
        "30d": TimeRange(now - timedelta(days=30), now),
        "all": TimeRange(datetime(1990, 1, 1, tzinfo=UTC), now),
    }
    found = []
    for board in all_boards():
        listed = [
            (f"{board.uid} #{q.panel_id} {q.panel_title} {q.ref_id}", q.raw_sql)
            for q in board.queries
        ]
        listed += [
            (f"{board.uid} ${v['name']}", str(v["query"]))
            for v in board.json.get("templating", {}).get("list", [])
        ]
        for name, sql in listed:
            expanded = {
                label: expand(sql, span, board.variables)
                for label, span in spans.items()
            }
            if expanded["30d"] == expanded["all"]:
                found.append((name, expanded["all"]))
            else:
                found += [(f"{name} [{label}]", e) for label, e in expanded.items()]
    return found


#: A query whose warm-up takes longer than this runs once more, not RUNS times.
_SLOW_S = 1.0


def _median(work: Callable[[], int], runs: int) -> tuple[int, float, int]:
    began = time.perf_counter()
    rows = work()  # warm-up
    if time.perf_counter() - began > _SLOW_S:
        runs = 1
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        rows = work()
        times.append((time.perf_counter() - began) * 1000)
    return rows, statistics.median(times), runs


def _timed(name: str, work: Callable[[], int], runs: int) -> Timing:
    rows, ms, done = _median(work, runs)
    _log(f"  {ms:9.1f} ms {rows:>7} rows  {name}")
    return Timing(name, rows, ms, done)


def measure(engine: Engine, now: datetime, runs: int) -> list[Timing]:
    """The median time of every query (after one warm-up run)."""
    from klimapuls.cli.progress import collector_paused, database_facts, database_rows

    timings = []
    timings.append(
        _timed(
            "klimapuls progress (every target)",
            lambda: len(database_rows(engine, now.date())),
            runs,
        )
    )
    # Where that time goes: reading the facts and the core's evaluation, as
    # the command does them (`load_facts` without the audit's restated
    # counts; the cyclic collector paused).
    facts = database_facts(engine)

    def load() -> int:
        with collector_paused():
            return len(database_facts(engine).accounts)

    def evaluate() -> int:
        with collector_paused():
            return len(evaluate_all(facts, now.date()))

    timings.append(_timed("  of which: load_facts", load, runs))
    timings.append(_timed("  of which: evaluate_all", evaluate, runs))
    with engine.connect() as conn:
        for name, sql in board_queries(now):
            missing = (
                "board.alerts_sent" in sql
                and conn.execute(
                    text("SELECT to_regclass('board.alerts_sent')")
                ).scalar()
                is None
            )
            if missing:
                continue
            timings.append(_timed(name, partial(_rows, conn, text(sql)), runs))
        conn.rollback()
    return timings


def _rows(conn: Connection, statement: TextClause) -> int:
    return len(conn.execute(statement).all())


def run(sites: int, days: int, years: int, runs: int) -> Result:
    """Build the data on a fresh embedded server and time every query."""
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedPostgres(Path(folder) / "pg")
        try:
            server.start()
            engine = create_db_engine(_fresh_database(server, "queries"))
            _log(f"filling: {sites} sites x {days} days of 15-minute counts")
            spent = fill(engine, sites, days, years)
            with engine.connect() as conn:
                stored = int(
                    conn.execute(text("SELECT count(*) FROM mobility_count")).scalar()
                    or 0
                )
            timings = measure(engine, START + timedelta(days=days), runs)
            engine.dispose()
        finally:
            with no_interruptions():  # the server it started is stopped
                server.stop()
    return Result(
        sites,
        days,
        years,
        stored,
        {k: round(v, 1) for k, v in spent.items()},
        timings,
        [t.query for t in timings if t.ms > GOAL_MS and not t.query.startswith(" ")],
    )


def print_table(result: Result) -> None:
    """The figures for people."""
    print(
        f"{result.count_rows:,} counts ({result.sites} sites x {result.days} days), "
        f"{result.years} years x 29 municipalities x 6 sectors; "
        "median of the runs after a warm-up"
    )
    width = max(len(t.query) for t in result.timings)
    print(f"{'query':<{width}} {'rows':>7} {'ms':>9} {'runs':>4}")
    for t in result.timings:
        flag = "  > 100 ms" if t.ms > GOAL_MS else ""
        print(f"{t.query:<{width}} {t.rows:>7} {t.ms:>9.1f} {t.runs:>4}{flag}")
    print(
        f"build: {sum(result.build_s.values()):.0f} s; "
        f"{len(result.over_goal)} of {len(result.timings)} queries over "
        f"{GOAL_MS:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=500, help="counting sites")
    parser.add_argument("--days", type=int, default=365, help="days of counts")
    parser.add_argument("--years", type=int, default=30, help="years of accounts")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.sites < 1 or args.days < 1 or args.years < 1 or args.runs < 1:
        parser.error("--sites, --days, --years and --runs must be at least 1")
    try:
        with stops_not_dropped():  # a Ctrl-C is never lost to a finalizer
            result = run(args.sites, args.days, args.years, args.runs)
    except KeyboardInterrupt:
        _log("interrupted: the server it started is stopped, no figures")
        return 130
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
