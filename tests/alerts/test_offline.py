"""`alerts --offline` and the services raise the same alerts on the same events.

The same event files go (a) through the real handlers of every service on a
real PostgreSQL, one file per delivery, with the alerts service evaluating
after each, and (b) through `klimapuls alerts --offline`. Every family
feeds a rule: CO2 accounts and targets (a slipping target, a forecast that
worsens, a target held back by a stale CO2 account, a restated year that
flips a target's status and is named in its notice), a silent counting site,
a silent fleet operator, initiative reports (a missing report), and a
producer whose events are rejected too often.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from klimapuls.alerts.handlers import AlertSender, AlertsHandler
from klimapuls.cli.alerts import database_alerts, offline_alerts
from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import BatchResult, Incoming
from klimapuls.deadletter.handlers import DeadLetterHandler
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.notify import NotConfiguredChannel, SmtpChannel
from klimapuls.targets.handlers import TargetsHandler
from tests.alerts.conftest import NO_HOLD, SmtpServer, add_contacts, status_messages
from tests.fleet.factories import fleet_event
from tests.helpers import co2_event, rows, target_event
from tests.mobility.factories import count_event

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
CONTACTS_YAML = """
contacts:
  - name: Klimakoordinator Ballerup
    party: "151"
    topics: [co2, initiatives]
    email: klima@ballerup.example.org
  - name: Regionens koordinatorer
    party: Region Hovedstaden
    topics: all
    email: klima@regionh.example.org
    webhook: https://hooks.example.org/klimapuls
  - name: Sekretariatet
    party: Klimaalliancen
    topics: [initiatives]
    email: sekretariat@klimaalliancen.example.com
  - name: Klimakoordinator Albertslund
    party: Albertslund
    topics: [co2]
    email: klima@albertslund.example.org
"""


def _series(code: str, values: dict[int, float]) -> list[dict[str, Any]]:
    return [co2_event(code, y, "energy", t) for y, t in values.items()]


def _report(initiative: str, round_: str, tovholdere: list[str]) -> dict[str, Any]:
    return {
        "schema": "initiative_status.v1",
        "event_id": f"test:{initiative}:{round_}",
        "producer": "pytest",
        "reported_at": f"{round_}-15T09:00:00+00:00",
        "initiative_id": initiative,
        "initiative_name": initiative.replace("-", " ").title(),
        "programme": "test-programme",
        "round": round_,
        "status": "on_track",
        "tovholdere": tovholdere,
    }


def _files(tmp_path: Path) -> list[Path]:
    first = [
        *_series(
            "151", {1990: 1000.0, 2020: 700.0, 2021: 690.0, 2022: 680.0, 2023: 670.0}
        ),
        *_series(
            "101", {1990: 1000.0, 2020: 450.0, 2021: 430.0, 2022: 410.0, 2023: 400.0}
        ),
        # Gentofte's account stops in 2021: stale, so its slip is held back.
        *_series("157", {1990: 1000.0, 2019: 800.0, 2020: 790.0, 2021: 780.0}),
        # Albertslund is above its path, but its forecast (290) reaches the
        # goal (300): at_risk, until 2021 is restated (below).
        *_series(
            "165",
            {1990: 1000.0, 2019: 510.0, 2020: 490.0, 2021: 470.0}
            | {2022: 450.0, 2023: 430.0},
        ),
        *(
            target_event(
                f"dk2020-{c}-2030", scope=c, reduction_pct=70, name=f"DK2020 {c}"
            )
            for c in ("151", "101", "157", "165")
        ),
        fleet_event("test-operator", "2025-01-31", garage="G", diesel=10),
        count_event("site-old", "bike", "2025-05-01T08:00:00+00:00", 40),
        count_event("site-live", "bike", "2025-06-01T08:00:00+00:00", 40),
        _report("test-a", "2025-03", ["Ballerup"]),
        _report("test-b", "2025-03", ["Gentofte"]),
        _report("test-a", "2025-04", ["Ballerup"]),
        # test-b misses 2025-04 (past the grace) and 2025-05 (within it).
        _report("test-a", "2025-05", ["Ballerup"]),
        # Three rejected events of the same producer: 3 of 31 is past 5 %.
        *(co2_event("999", 2023, "energy", 1.0, event_id=f"bad-{n}") for n in range(3)),
    ]
    # A second delivery: København's 2023 figure is restated much higher, and
    # Albertslund's 2021 by +12.8 %: its forecast (302) now misses the goal.
    second = [
        co2_event("101", 2023, "energy", 700.0, "2025-05-01"),
        co2_event("165", 2021, "energy", 530.0, "2025-05-01"),
    ]
    paths = []
    for n, events in enumerate((first, second), start=1):
        path = tmp_path / f"delivery-{n}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events), "utf-8")
        paths.append(path)
    return paths


def _incoming(kind: str, events: Sequence[dict[str, Any]]) -> list[Incoming]:
    return [
        Incoming(kind, json.dumps(e).encode(), f"{kind}:0:{i}")
        for i, e in enumerate(events)
    ]


def _through_the_services(engine: Engine, paths: Sequence[Path]) -> None:
    """Each file as one delivery to every service, as the topics would carry it."""
    clock = lambda: NOW  # noqa: E731
    handlers = {
        "co2_account": Co2Handler(engine, clock),
        "fleet_status": FleetHandler(engine, clock),
        "mobility_count": MobilityHandler(engine, clock),
        "initiative_status": InitiativeHandler(engine, clock),
    }
    targets = TargetsHandler(engine, clock)
    alerts = AlertsHandler(engine, clock, NO_HOLD)
    letters = DeadLetterHandler(engine, clock)
    for path in paths:
        events = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            by_kind.setdefault(e["schema"].split(".")[0], []).append(e)
        results: list[BatchResult] = [
            handlers[kind].handle(_incoming(kind, found))
            for kind, found in by_kind.items()
            if kind in handlers
        ]
        notices = [
            Incoming("series_change", n.to_json(), "series-change:0:0")
            for r in results
            for n in r.series_changes
        ]
        dead = [d.to_json() for r in results for d in r.dead_letters]
        if dead:
            letters.handle(dead)
        changed = targets.handle(
            _incoming("target", by_kind.get("target", [])) + notices
        )
        # The targets service dead-letters its refused events too.
        if changed.dead_letters:
            letters.handle([d.to_json() for d in changed.dead_letters])
        alerts.handle(status_messages(changed.status_changes))


def _sender(engine: Engine, smtp: SmtpServer) -> AlertSender:
    email = SmtpChannel("127.0.0.1", smtp.port, "Klimapuls <klimapuls@example.org>")
    return AlertSender(
        engine,
        lambda: NOW,
        # The example webhook is not reached from a test: it waits.
        {"email": email, "webhook": NotConfiguredChannel("no webhook in tests")},
        NO_HOLD,
        "https://grafana.example.org",
    )


def _essence(rows_: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            r["key"],
            r["state"],
            r["severity"],
            r["inhibited_by"],
            tuple(
                sorted((c["name"], c["channel"], c["address"]) for c in r["recipients"])
            ),
        )
        for r in rows_
    )


def test_offline_and_database_paths_raise_the_same_alerts(
    engine: Engine, tmp_path: Path, smtp: SmtpServer
) -> None:
    from klimapuls.cli.alerts import load_contact_file

    contacts_file = tmp_path / "contacts.yaml"
    contacts_file.write_text(CONTACTS_YAML, "utf-8")
    people = load_contact_file(contacts_file)
    add_contacts(engine, *people)
    paths = _files(tmp_path)

    _through_the_services(engine, paths)
    in_db = database_alerts(engine)
    offline, issues = offline_alerts(paths, NOW, NO_HOLD)
    from klimapuls.core.alert_offline import alert_json

    on_files = [alert_json(a, people) for a in offline.alerts()]

    assert len(issues) == 3 and all("municipality_code" in i for i in issues)
    assert _essence(in_db) == _essence(on_files)
    keys = {r["key"]: r for r in on_files}
    # Every family raised its rule.
    assert keys["target_status:dk2020-151-2030:151:2030"]["severity"] == "off_track"
    assert "forecast_worsened:dk2020-101-2030:101:2030" in keys
    held = keys["target_status:dk2020-157-2030:157:2030"]
    assert held["inhibited_by"] == "feed_stale:co2_account/157:157:-"
    assert held["state"] == "pending"
    assert "feed_stale:counting_site/site-old:147:-" in keys
    assert "feed_stale:counting_site/site-live:147:-" not in keys
    assert "feed_stale:fleet_report/test-operator:test-operator:-" in keys
    missing = keys["missing_report:test-b:test-programme:2025-04"]
    assert "missing_report:test-b:test-programme:2025-05" not in keys  # grace
    assert [c["name"] for c in missing["recipients"]] == []  # Gentofte: no contact
    assert keys["dead_letter_rate:pytest:-:-"]["facts"]["rejected"] == 3
    ballerup = keys["target_status:dk2020-151-2030:151:2030"]["recipients"]
    assert [c["address"] for c in ballerup] == ["klima@ballerup.example.org"]
    # The numbers match too, for every target alert.
    db_facts = {r["key"]: r["facts"] for r in in_db if r["target_id"]}
    assert db_facts == {k: r["facts"] for k, r in keys.items() if r["target_id"]}
    # A restated year flipped Albertslund's status; both paths name it.
    flipped = keys["target_status:dk2020-165-2030:165:2030"]
    assert flipped["severity"] == "off_track"
    [restated] = flipped["facts"]["restatements"]
    assert restated == {
        "family": "co2_account",
        "restated_at": "2025-05-01T09:00:00+00:00",
        "scope": "165",
        "municipality_code": "165",
        "year": 2021,
        "period": "2021",
        "sector": "energy",
        "detail": "",
        "unit": "t CO2e",
        "old_value": 470.0,
        "new_value": 530.0,
        "change_pct": restated["change_pct"],
        "old_vintage": "2022-05-01",
        "new_vintage": "2025-05-01",
        "producer": "pytest",
    }
    assert round(restated["change_pct"], 2) == 12.77
    assert keys["target_status:dk2020-151-2030:151:2030"]["facts"]["restatements"] == []
    # The mail to Albertslund (the firing and the worsened notice, one digest)
    # names the restatement once, with the status change it caused.
    assert _sender(engine, smtp).send_due().sent >= 1
    [mail] = smtp.to("klima@albertslund.example.org")
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    line = (
        "Rettet: 2021 fra 470 til 530 t CO2e (+12,8 %), årgang 2022-05-01 -> 2025-05-01"
    )
    assert body.count(line) == 1, body
    assert "status i fare -> ikke på sporet" in body
    # And the initiative views of the database agree with the core offline.
    db_missing = rows(
        engine,
        "SELECT initiative_id, round FROM initiative_missing_report "
        "WHERE programme = 'test-programme' ORDER BY round",
    )
    assert [(r["initiative_id"], r["round"]) for r in db_missing] == [
        ("test-b", "2025-04"),
        ("test-b", "2025-05"),
    ]


def test_refused_target_revisions_count_in_the_dead_letter_rate_on_both_paths(
    engine: Engine, tmp_path: Path
) -> None:
    # 20 accepted events, then two revisions that reuse version 1 with other
    # content: 2 of 23 refused, past 5 %, on the targets service's own topic.
    first = [
        *(co2_event("151", 2000 + n, "energy", 500.0 + n) for n in range(20)),
        target_event("dk2020-151-2030", scope="151", reduction_pct=70),
    ]
    second = [
        target_event(
            "dk2020-151-2030",
            scope="151",
            reduction_pct=pct,
            reported_at="2025-05-01T00:00:00+00:00",
        )
        | {"event_id": f"test:clash:{pct}"}
        for pct in (60, 80)
    ]
    paths = []
    for n, events in enumerate((first, second), start=1):
        path = tmp_path / f"delivery-{n}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events), "utf-8")
        paths.append(path)

    _through_the_services(engine, paths)
    in_db = {r["key"]: r for r in database_alerts(engine)}
    offline, issues = offline_alerts(paths, NOW, NO_HOLD)
    on_files = {a.key: a for a in offline.alerts()}

    assert len(issues) == 2 and all("version 1" in i for i in issues)
    key = "dead_letter_rate:pytest:-:-"
    assert in_db[key]["facts"]["rejected"] == 2
    assert dict(on_files[key].facts) == in_db[key]["facts"]


def test_alerts_offline_prints_json_with_recipients(tmp_path: Path) -> None:
    contacts_file = tmp_path / "contacts.yaml"
    contacts_file.write_text(CONTACTS_YAML, "utf-8")
    paths = _files(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "klimapuls",
            "alerts",
            "--offline",
            *map(str, paths),
            "--json",
            "--as-of",
            date(2025, 6, 1).isoformat(),
            "--contacts",
            str(contacts_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # the three bad lines
    assert "delivery-1.jsonl:" in result.stderr and "municipality_code" in result.stderr
    printed = json.loads(result.stdout)
    slip = next(
        r for r in printed if r["key"] == "target_status:dk2020-151-2030:151:2030"
    )
    assert slip["recipients"][0]["address"] == "klima@ballerup.example.org"
    assert (
        slip["facts"]["latest_year"] == 2023
        and slip["facts"]["vintage"] == "2024-05-01"
    )


def test_a_bad_contact_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "contacts:\n  - name: X\n    party: Atlantis\n    email: x@example.org\n"
    )
    data = tmp_path / "e.jsonl"
    data.write_text("")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "klimapuls",
            "alerts",
            "--offline",
            str(data),
            "--contacts",
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    line = " ".join(result.stderr.split())  # one message (rich wraps at 80)
    assert line.startswith("error:") and line.count("error:") == 1
    assert "contacts.0.party" in line and "Atlantis" in line
    assert "Traceback" not in result.stderr


def test_progress_offline_finds_the_missing_reports_the_database_finds(
    engine: Engine, tmp_path: Path
) -> None:
    from datetime import date as day

    from klimapuls.cli.progress import read_offline
    from klimapuls.simulator import initiative_events

    events = [e.body for e in initiative_events(2045, day(2026, 6, 1))]
    # A clock past every report, so none is beyond the horizon on either path.
    later = datetime(2026, 12, 1, tzinfo=UTC)
    InitiativeHandler(engine, lambda: later).handle(
        _incoming("initiative_status", events)  # type: ignore[arg-type]
    )
    path = tmp_path / "reports.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), "utf-8")
    report = read_offline([path], later)
    in_db = rows(
        engine,
        "SELECT programme, round, initiative_id, tovholdere "
        "FROM initiative_missing_report ORDER BY programme, round, initiative_id",
    )
    assert in_db and [
        (m.programme, m.round, m.initiative_id, list(m.tovholdere))
        for m in report.missing
    ] == [
        (r["programme"], r["round"], r["initiative_id"], r["tovholdere"]) for r in in_db
    ]
    untended = rows(
        engine,
        "SELECT initiative_id FROM initiative_without_tovholder ORDER BY 1",
    )
    assert [i.initiative_id for i in report.without_tovholder] == [
        r["initiative_id"] for r in untended
    ]
