"""One definition of "the same fact": files and database agree on every event.

The same event sequences go through the offline fold (`progress --offline`)
and through the services' handlers on a real database. Both must accept,
drop and refuse the same events, for the same field, and give identical
progress JSON, floats included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.cli.progress import database_rows
from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import Incoming
from klimapuls.core.fold import EventFold
from klimapuls.core.identity import Verdict
from klimapuls.core.progress import evaluate_all
from klimapuls.core.reference import municipality_codes, seed_target_events
from klimapuls.core.validation import validate_event
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.storage.progress import progress_rows
from klimapuls.targets.handlers import TargetsHandler
from tests.fleet.factories import fleet_event
from tests.helpers import co2_event, target_event
from tests.mobility.factories import count_event

NOW = datetime(2026, 11, 1, tzinfo=UTC)
Event = tuple[str, dict[str, Any]]

HANDLERS: dict[str, Callable[..., Any]] = {
    "co2_account": Co2Handler,
    "fleet_status": FleetHandler,
    "mobility_count": MobilityHandler,
    "initiative_status": InitiativeHandler,
    "target": TargetsHandler,
}


def _report(round_: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema": "initiative_status.v1",
        "event_id": f"test:report:{round_}:{status}",
        "producer": "pytest",
        "reported_at": f"{round_}-15T09:00:00+00:00",
        "initiative_id": "test-initiative",
        "round": round_,
        "status": status,
        "tovholdere": ["Region Hovedstaden"],
        **fields,
    }


def _accounts() -> list[Event]:
    # Figures with many digits, so that any difference in summing order or a
    # lossy numeric round trip would show in the last bits.
    return [
        ("co2_account", co2_event(code, year, sector, tonnes))
        for i, code in enumerate(municipality_codes())
        for year, base in ((1990, 10_000.0), (2021, 6_100.0), (2022, 5_900.0))
        for sector, tonnes in (
            ("energy", base * 0.55 + i / 7),
            ("transport", base * 0.33 + i / 3),
            ("other", base * 0.12 + 0.1 + 0.2),
        )
    ]


def _counts() -> list[Event]:
    return [
        ("mobility_count", count_event(f"site-{mode}", mode, start, n))
        for m in range(1, 13)
        for mode, n in (("car", 440), ("bike", 210 + m), ("walk", 240), ("bus", 110))
        for start in (f"2024-{m:02d}-10T06:00:00+00:00",)
    ]


def _fleet() -> list[Event]:
    return [
        (
            "fleet_status",
            fleet_event("movia", f"{y}-12-31", garage="G", diesel=100 - v, hvo=v),
        )
        for y, v in ((2022, 39), (2023, 45), (2024, 53))
    ]


ACCOUNT = co2_event("101", 2022, "waste", 123.456789)
FLEET = fleet_event("movia", "2024-06-30", garage="H", diesel=5, battery_electric=5)
COUNT = count_event("site-x", "walk", "2024-05-10T06:00:00+00:00", 50)
REPORT = _report("2024-10", "on_track")
SEED = next(e for e in seed_target_events() if e["target_id"] == "region-co2-2030")
KBH = target_event("kbh-2030", scope="101", reduction_pct=70)


def _resent(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "reported_at": "2026-10-01T00:00:00+00:00"}


def _corrected(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Another report of the same slot, a little later, under a new id."""
    return {
        **event,
        "event_id": f"{event['event_id']}:corrected",
        "reported_at": "2025-09-01T00:00:00+00:00",
        **fields,
    }


SEQUENCES: dict[str, list[Event]] = {
    "back to earlier content": [
        (kind, step)
        for kind, event, correction in (
            ("co2_account", ACCOUNT, {"tonnes_co2e": 130.5}),
            ("fleet_status", FLEET, {"buses": {"diesel": 10}}),
            ("mobility_count", COUNT, {"count": 57}),
            ("initiative_status", REPORT, {"status": "delayed"}),
        )
        # A, B, A again (wins back), A again replayed (a duplicate)
        for step in (
            event,
            _corrected(event, **correction),
            _resent(event),
            _resent(event),
        )
    ],
    # In batches of two: B, B again, then A (reported before B: late, not
    # current) and A re-sent after B in one batch, where A was first stored:
    # the re-send still wins the slot back from the stored B.
    "a late report re-sent in its own batch": [
        (kind, step)
        for kind, event, correction in (
            ("co2_account", ACCOUNT, {"tonnes_co2e": 130.5}),
            ("fleet_status", FLEET, {"buses": {"diesel": 10}}),
            ("mobility_count", COUNT, {"count": 57}),
            ("initiative_status", REPORT, {"status": "delayed"}),
        )
        for step in (
            _corrected(event, **correction),
            _corrected(event, **correction),
            event,
            _resent(event),
        )
    ],
    "duplicates": [
        ("co2_account", ACCOUNT),
        ("co2_account", ACCOUNT),
        ("fleet_status", FLEET),
        ("fleet_status", FLEET),
        ("mobility_count", COUNT),
        ("mobility_count", COUNT),
        ("initiative_status", REPORT),
        ("initiative_status", REPORT),
    ],
    "re-sent with a new reported_at": [
        ("co2_account", ACCOUNT),
        ("co2_account", _resent(ACCOUNT)),
        ("fleet_status", FLEET),
        ("fleet_status", _resent(FLEET)),
        ("mobility_count", COUNT),
        ("mobility_count", _resent(COUNT)),
        ("initiative_status", REPORT),
        ("initiative_status", _resent(REPORT)),
    ],
    "reused ids": [
        ("co2_account", ACCOUNT),
        ("co2_account", {**ACCOUNT, "tonnes_co2e": 1.5}),
        ("fleet_status", FLEET),
        ("fleet_status", {**FLEET, "buses": {"diesel": 9}}),
        ("mobility_count", COUNT),
        ("mobility_count", {**COUNT, "count": 51}),
        ("initiative_status", REPORT),
        ("initiative_status", {**REPORT, "status": "delayed"}),
        ("target", KBH),
        ("target", {**KBH, "target_id": "kbh-2035"}),  # an id names one version
    ],
    "restatements": [
        ("co2_account", ACCOUNT),
        ("co2_account", co2_event("101", 2022, "waste", 99.9, "2024-05-01")),
        ("fleet_status", FLEET),
        (
            "fleet_status",
            fleet_event(
                "movia",
                "2024-06-30",
                garage="H",
                diesel=1,
                battery_electric=9,
                reported_at="2024-08-01T00:00:00+00:00",
            ),
        ),
        ("mobility_count", COUNT),
        (
            "mobility_count",
            count_event("site-x", "walk", COUNT["interval_start"], 60, revision=1),
        ),
    ],
    "target revisions": [
        ("target", KBH),
        ("target", target_event("kbh-2030", 2, scope="101", reduction_pct=75)),
        (
            "target",
            {
                **target_event("kbh-2030", 2, scope="101", reduction_pct=80),
                "event_id": "other",
            },
        ),
        ("target", target_event("region-co2-2030", 2, reduction_pct=90)),
    ],
    "numbers by value": [
        ("co2_account", {**ACCOUNT, "event_id": "whole", "tonnes_co2e": 1100.0}),
        ("co2_account", {**ACCOUNT, "event_id": "whole", "tonnes_co2e": 1100}),
        ("co2_account", _resent({**ACCOUNT, "event_id": "n", "tonnes_co2e": 7})),
        ("co2_account", {**ACCOUNT, "event_id": "n", "tonnes_co2e": 7.0}),
        ("co2_account", {**ACCOUNT, "event_id": "n", "tonnes_co2e": 7.5}),
    ],
    "identical re-declarations": [
        ("target", {**SEED, "event_id": "again", "producer": "region-hovedstaden"}),
        ("target", {**SEED, "reduction_pct": 85.0, "event_id": "as-float"}),
        ("target", {**SEED, "event_id": "renamed", "name": "Et andet navn"}),
        ("target", KBH),
        (
            "target",
            {**KBH, "event_id": "kbh-again", "reported_at": "2025-01-01T00:00:00Z"},
        ),
    ],
    "everything": _accounts()
    + _fleet()
    + _counts()
    + [
        ("target", KBH),
        ("target", target_event("kbh-2030", 2, scope="101", reduction_pct=75)),
        ("co2_account", co2_event("101", 2022, "energy", 3_300.0, "2024-05-01")),
        (
            "co2_account",
            _resent(co2_event("147", 2021, "energy", 6_100 * 0.55 + 1 / 7)),
        ),
    ],
}


def _offline(
    events: list[Event],
) -> tuple[list[tuple[Verdict, str | None]], list[dict[str, Any]]]:
    fold = EventFold()
    verdicts = []
    for kind, event in events:
        judgement = fold.judge(kind, validate_event(kind, event))
        verdicts.append(
            (judgement.verdict, judgement.issue.field if judgement.issue else None)
        )
    return verdicts, [p.as_json() for p in evaluate_all(fold.facts(), NOW.date())]


def _database(
    engine: Engine, events: list[Event], batch_size: int
) -> tuple[list[tuple[Verdict, str | None]], list[dict[str, Any]]]:
    verdicts: dict[int, tuple[Verdict, str | None]] = {}
    for kind, make in HANDLERS.items():
        handler = make(engine, lambda: NOW)
        mine = [(i, e) for i, (k, e) in enumerate(events) if k == kind]
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            result = handler.handle(
                [Incoming(kind, json.dumps(e).encode(), f"t:0:{i}") for i, e in chunk]
            )
            letters = iter(result.dead_letters)
            for (i, _), verdict in zip(chunk, result.verdicts, strict=True):
                field = next(letters).field if verdict is Verdict.REJECTED else None
                verdicts[i] = (verdict, field)
    TargetsHandler(engine, lambda: NOW).refresh()
    return [verdicts[i] for i in range(len(events))], database_rows(engine, NOW.date())


@pytest.mark.parametrize("batch_size", [1, 2, 500])
@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_files_and_database_judge_every_event_alike_and_agree_on_progress(
    engine: Engine, grant: Callable[..., None], name: str, batch_size: int
) -> None:
    # The offline path applies no grants: let the region write its targets.
    grant("region-hovedstaden", "1084")
    events = SEQUENCES[name]
    offline_verdicts, offline_progress = _offline(events)
    db_verdicts, db_progress = _database(engine, events, batch_size)
    assert db_verdicts == offline_verdicts
    assert json.dumps(db_progress, sort_keys=True) == json.dumps(
        offline_progress, sort_keys=True
    )
    # What the targets service stored is the same evaluation.
    with engine.connect() as conn:
        stored = {r["target_id"]: r for r in progress_rows(conn)}
    for row in offline_progress:
        kept = stored[row["target_id"]]
        for key in (
            "version",
            "status",
            "latest_value",
            "forecast_value",
            "path_value",
        ):
            assert kept[key] == row[key], (row["target_id"], key)


def test_the_sequences_cover_every_verdict() -> None:
    seen = {v for events in SEQUENCES.values() for v, _ in _offline(events)[0]}
    assert seen == set(Verdict)


def test_1100_and_1100_0_are_the_same_content() -> None:
    from klimapuls.core.identity import content_digest

    assert content_digest({**ACCOUNT, "tonnes_co2e": 1100}) == content_digest(
        {**ACCOUNT, "tonnes_co2e": 1100.0}
    )
    assert content_digest({**ACCOUNT, "tonnes_co2e": 1100}) != content_digest(
        {**ACCOUNT, "tonnes_co2e": 1100.5}
    )


def test_a_row_stored_before_numbers_counted_by_value_stays_a_duplicate(
    engine: Engine,
) -> None:
    from klimapuls.core.identity import legacy_digest

    event = {**ACCOUNT, "event_id": "old-row", "tonnes_co2e": 1100.0}
    _database(engine, [("co2_account", event)], 1)
    # As an earlier release stored it: the digest of the float as written.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE co2_account SET payload_sha256 = %(d)s WHERE event_id = 'old-row'",
            {"d": legacy_digest(event)},
        )
    verdicts, _ = _database(engine, [("co2_account", _resent(event))], 1)
    assert verdicts == [(Verdict.DUPLICATE, None)]


def test_a_whole_number_re_sent_as_int_or_float_is_a_duplicate() -> None:
    verdicts = [v for v, _ in _offline(SEQUENCES["numbers by value"])[0]]
    assert verdicts == [
        Verdict.NEW,
        Verdict.DUPLICATE,  # 1100.0 stored, 1100 re-sent
        Verdict.NEW,
        Verdict.DUPLICATE,  # 7 stored, 7.0 re-sent
        Verdict.REJECTED,  # 7.5 is another figure under a used id
    ]


def test_a_judgement_hands_on_the_fact_it_was_judged_by() -> None:
    """`Judgement.fact` is the model storage would build: the count itself,
    and for a re-sent fact winning back its slot, the count under its
    `resend_id`; targets have none."""
    from klimapuls.core.identity import Ledger, resend_id
    from klimapuls.core.mobility import MobilityCount

    first = count_event("s1", "bike", "2025-05-01T06:00:00+00:00", 10)
    other = _corrected(first, count=12)
    ledger = Ledger("mobility_count")
    judged = [ledger.judge(e) for e in (first, other, _resent(first))]
    assert [j.verdict for j in judged] == [Verdict.NEW] * 3
    assert judged[0].fact == MobilityCount.from_event(first)
    stored_id = resend_id(first["event_id"], _resent(first)["reported_at"])
    assert judged[2].identity.event_id == stored_id
    assert judged[2].fact == MobilityCount.from_event(
        {**_resent(first), "event_id": stored_id}
    )
    assert Ledger("target").judge(KBH).fact is None
