"""The alert rules and state machine as pure functions (no servers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from klimapuls.core.alert_state import Ack, ContactError, parse_contacts, step
from klimapuls.core.alert_text import board_link
from klimapuls.core.alerting import (
    AlertRules,
    Condition,
    DeadLetterCount,
    FeedStatus,
    TargetObservation,
    dead_letter_conditions,
    feed_conditions,
    forecast_worsening_pct,
    inhibit,
    initiative_conditions,
    observe,
    target_conditions,
    usable_forecast,
)
from klimapuls.core.initiatives import Initiative, MissingReport
from klimapuls.core.messages import TargetStatusChange
from klimapuls.core.model import Target
from klimapuls.core.progress import MeasuredSeries
from klimapuls.core.restatements import Restatement
from klimapuls.core.targets import evaluate
from klimapuls.simulator import demo_events, dk2020_demo_targets

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
RULES = AlertRules(hold=timedelta(hours=1), escalate_after=timedelta(days=1))
NO_HOLD = replace(RULES, hold=timedelta(0))
HOUR = timedelta(hours=1)


def _change(
    n: int,
    status: str,
    forecast: float | None,
    previous: str | None = None,
    previous_forecast: float | None = None,
) -> TargetStatusChange:
    return TargetStatusChange(
        target_id="t",
        version=1,
        name="T",
        scope="151",
        indicator="co2e_total",
        unit="t CO2e",
        previous_status=previous,
        status=status,  # type: ignore[arg-type]
        previous_stale=False,
        stale=False,
        latest_year=2023,
        latest_value=600.0,
        target_year=2030,
        target_value=300.0,
        path_value=420.0,
        gap_to_path=180.0,
        forecast_value=forecast,
        required_annual_reduction=40.0,
        changed_at=T0,
        previous_forecast_value=previous_forecast,
        id=n,
    )


def _slip(severity: str = "at_risk", inhibited_by: str | None = None) -> Condition:
    return Condition(
        rule="target_status",
        subject="t",
        scope="151",
        period="2030",
        severity=severity,
        topic="co2",
        parties=("Ballerup",),
        title="T",
        inhibited_by=inhibited_by,
    )


def test_a_condition_must_hold_before_it_fires_and_flapping_sends_nothing() -> None:
    first = step([], [_slip()], [], T0, RULES)
    [pending] = first.alerts
    assert (pending.state, first.notices) == ("pending", [])
    gone = step([pending], [], [], T0 + timedelta(minutes=30), RULES)
    assert [a.state for a in gone.alerts] == ["cleared"] and gone.notices == []
    held = step([pending], [_slip()], [], T0 + timedelta(hours=1), RULES)
    assert [n.kind for n in held.notices] == ["firing"]


def test_only_a_worse_severity_is_a_new_notice_and_recovery_resolves() -> None:
    fired = step([], [_slip()], [], T0, replace(RULES, hold=timedelta(0))).alerts[0]
    same = step([fired], [_slip()], [], T0, RULES)
    assert same.notices == []
    worse = step([fired], [_slip("off_track")], [], T0, NO_HOLD)
    assert [n.kind for n in worse.notices] == ["worsened"]
    better = step(worse.alerts, [_slip("at_risk")], [], T0, RULES)
    assert better.notices == []
    resolved = step(worse.alerts, [], [], T0, RULES)
    assert [n.kind for n in resolved.notices] == ["resolved"]


def test_a_worse_severity_must_hold_before_the_worsened_notice() -> None:
    fired = step([], [_slip()], [], T0, NO_HOLD).alerts[0]
    at = T0 + timedelta(minutes=10)
    [worse] = step([fired], [_slip("off_track")], [], at, RULES).alerts
    assert worse.worse_since == at and worse.notified_severity == "at_risk"
    # A restatement and its correction within the hold: nothing is sent.
    corrected = step([worse], [_slip()], [], at + timedelta(minutes=20), RULES)
    assert corrected.notices == [] and corrected.alerts[0].worse_since is None
    again = at + timedelta(minutes=30)
    [worse] = step(corrected.alerts, [_slip("off_track")], [], again, RULES).alerts
    early = step(
        [worse], [_slip("off_track")], [], again + timedelta(minutes=59), RULES
    )
    assert early.notices == []
    held = step([worse], [_slip("off_track")], [], again + timedelta(hours=1), RULES)
    assert [n.kind for n in held.notices] == ["worsened"]
    [notified] = held.alerts
    assert notified.worse_since is None and notified.notified_severity == "off_track"


def test_an_acknowledged_alert_does_not_escalate_an_unacknowledged_one_does() -> None:
    fired = replace(
        step([], [_slip()], [], T0, replace(RULES, hold=timedelta(0))).alerts[0],
        alert_id=7,
    )
    later = T0 + timedelta(days=2)
    escalated = step([fired], [_slip()], [], later, RULES)
    assert [(n.kind, n.parties) for n in escalated.notices] == [
        ("escalated", ("Klimaalliancen",))
    ]
    acked = step([fired], [_slip()], [Ack(7, T0, "Ballerup")], T0, RULES).alerts[0]
    assert acked.state == "acknowledged"
    assert step([acked], [_slip()], [], later, RULES).notices == []


def test_an_ack_covers_the_notices_before_it_and_a_new_notice_can_escalate_again() -> (
    None
):
    fired = replace(
        step([], [_slip()], [], T0, replace(RULES, hold=timedelta(0))).alerts[0],
        alert_id=7,
    )
    ack = Ack(7, T0 + timedelta(hours=1), "Ballerup")
    [acked] = step([fired], [_slip()], [ack], T0 + timedelta(hours=1), RULES).alerts
    assert acked.state == "acknowledged"
    # It worsens: a new notice, which the earlier ack does not cover.
    worse_at = T0 + timedelta(hours=2)
    worsened = step([acked], [_slip("off_track")], [], worse_at, NO_HOLD)
    [alert] = worsened.alerts
    assert [n.kind for n in worsened.notices] == ["worsened"]
    assert alert.state == "firing"
    old_ack = step([alert], [_slip("off_track")], [ack], worse_at, RULES)
    assert old_ack.alerts == [] and old_ack.notices == []  # still firing
    # Escalation counts from the worsened notice, not from the first one.
    before = step(
        [alert], [_slip("off_track")], [ack], worse_at + timedelta(hours=23), RULES
    )
    assert before.notices == []
    late = step(
        [alert], [_slip("off_track")], [ack], worse_at + timedelta(days=1), RULES
    )
    assert [(n.kind, n.parties) for n in late.notices] == [
        ("escalated", ("Klimaalliancen",))
    ]
    # A new ack covers the worsened notice: no escalation after it.
    new_ack = Ack(7, worse_at + timedelta(hours=3), "Ballerup")
    [covered] = step(
        [alert], [_slip("off_track")], [new_ack], worse_at + timedelta(hours=3), RULES
    ).alerts
    assert covered.state == "acknowledged"
    assert (
        step(
            [covered], [_slip("off_track")], [], worse_at + timedelta(days=5), RULES
        ).notices
        == []
    )


def test_an_inhibited_condition_waits_and_says_by_what() -> None:
    stale = FeedStatus("co2_account", "151", "151", T0 - timedelta(days=1500), 2020)
    measured = replace(_slip(), measured_on=("co2_account", "151"))
    found = inhibit([*feed_conditions([stale], T0, RULES), measured])
    [slip] = [c for c in found if c.rule == "target_status"]
    assert slip.inhibited_by == "feed_stale:co2_account/151:151:-"
    [feed] = [c for c in found if c.rule == "feed_stale"]
    assert feed.facts["holds_back"] == [slip.key]  # and the feed alert says so
    alert = step([], [slip], [], T0, replace(RULES, hold=timedelta(0))).alerts[0]
    assert alert.state == "pending" and alert.inhibited_by == slip.inhibited_by
    freed = step(
        [alert],
        [replace(slip, inhibited_by=None)],
        [],
        T0,
        replace(RULES, hold=timedelta(0)),
    )
    assert [n.kind for n in freed.notices] == ["firing"]


def test_a_forecast_that_worsens_by_more_than_the_share_opens_until_it_recovers() -> (
    None
):
    first = observe(None, _change(1, "on_track", 280.0), RULES)
    small = observe(first, _change(2, "on_track", 300.0, "on_track", 280.0), RULES)
    assert small.forecast_reference is None  # +7 %: under 10 %
    worse = observe(small, _change(3, "at_risk", 400.0, "on_track", 300.0), RULES)
    assert worse.forecast_reference == 300.0
    [c] = [
        c for c in target_conditions([worse], RULES) if c.rule == "forecast_worsened"
    ]
    assert c.key == "forecast_worsened:t:151:2030" and c.parties == ("Ballerup",)
    still = observe(worse, _change(4, "at_risk", 395.0, "at_risk", 400.0), RULES)
    assert still.forecast_reference == 300.0
    back = observe(still, _change(5, "on_track", 310.0, "at_risk", 395.0), RULES)
    assert back.forecast_reference is None
    assert observe(back, _change(3, "off_track", 999.0), RULES) is back  # replay


def test_a_forecast_of_zero_or_missing_is_no_worsening_and_keeps_the_reference() -> (
    None
):
    assert usable_forecast(None) is None and usable_forecast(0.0) is None
    assert usable_forecast(-3.0) == -3.0
    # From 0 or to 0/None: no share computed, no division by zero.
    assert forecast_worsening_pct(0.0, 400.0, "co2e_total", 0.0) == 0.0
    assert forecast_worsening_pct(300.0, None, "co2e_total", 300.0) == 0.0
    first = observe(None, _change(1, "on_track", 0.0), RULES)
    from_zero = observe(first, _change(2, "at_risk", 400.0, "on_track", 0.0), RULES)
    assert from_zero.forecast_reference is None
    worse = observe(from_zero, _change(3, "at_risk", 450.0, "at_risk", 300.0), RULES)
    assert worse.forecast_reference == 300.0
    # The forecast goes missing, then comes back: still compared to 300.
    gone = observe(worse, _change(4, "at_risk", None, "at_risk", 450.0), RULES)
    assert gone.forecast_reference == 300.0
    zero = observe(gone, _change(5, "at_risk", 0.0, "at_risk", None), RULES)
    assert zero.forecast_reference == 300.0
    back = observe(zero, _change(6, "at_risk", 460.0, "at_risk", 0.0), RULES)
    assert back.forecast_reference == 300.0
    [c] = [c for c in target_conditions([back], RULES) if c.rule == "forecast_worsened"]
    assert c.facts["forecast_reference"] == 300.0


def _at(change: TargetStatusChange, after: timedelta) -> TargetStatusChange:
    return replace(change, changed_at=T0 + after)


def test_a_target_that_was_achieved_and_no_longer_is_slips() -> None:
    achieved = observe(None, _change(1, "achieved", 250.0), RULES)
    still = observe(
        achieved, _at(_change(2, "achieved", 240.0, "achieved"), HOUR), RULES
    )
    ended = _at(_change(3, "on_track", 250.0, "achieved", 240.0), HOUR * 1.5)
    lost = observe(still, ended, RULES)
    [c] = target_conditions([lost], RULES)
    assert (c.rule, c.severity) == ("target_status", "on_track")
    # Remembered across a restart of the alert service.
    assert TargetObservation.from_json(still.as_json()) == still


def test_an_achievement_shorter_than_the_hold_time_is_not_one_to_lose() -> None:
    # Evaluated while an account upload was half-way: briefly "achieved".
    achieved = observe(None, _change(1, "achieved", 250.0), RULES)
    ended = _at(_change(2, "on_track", 250.0, "achieved", 250.0), HOUR / 2)
    assert target_conditions([observe(achieved, ended, RULES)], RULES) == []


def test_an_achievement_of_unknown_start_still_counts() -> None:
    # Stored by a release that did not keep when an achievement began.
    stored = observe(None, _change(1, "achieved", 250.0), RULES).as_json()
    stored.pop("achieved_since")
    achieved = TargetObservation.from_json(stored)
    lost = observe(achieved, _change(2, "on_track", 250.0, "achieved"), RULES)
    [c] = target_conditions([lost], RULES)
    assert c.rule == "target_status"


def test_a_missing_report_fires_after_the_grace_and_older_rounds_keep_firing() -> None:
    listed = [
        Initiative("a", "A", "p", "g", ("Ballerup",)),
        Initiative("b", "B", "p", "g", ("Herlev",)),
    ]
    missing = [
        MissingReport("b", "p", "2025-03", ("Herlev",)),
        MissingReport("b", "p", "2025-05", ("Herlev",)),
    ]
    rules = replace(RULES, report_grace=timedelta(days=30))

    def fired(now: datetime) -> list[str]:
        return [
            c.period for c in initiative_conditions(listed, missing, [], now, rules)
        ]

    # 2025-05 ends on 1 June; it fires 30 days later, 2025-03 still fires.
    assert fired(datetime(2025, 6, 30, 23, tzinfo=UTC)) == ["2025-03"]
    assert fired(datetime(2025, 7, 1, tzinfo=UTC)) == ["2025-03", "2025-05"]
    assert AlertRules().report_grace == timedelta(days=30)


def test_the_report_grace_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from klimapuls.settings import Settings

    monkeypatch.setenv("KLIMAPULS_ALERT_REPORT_GRACE_DAYS", "7")
    assert Settings().alert_rules().report_grace == timedelta(days=7)


def test_the_restatement_window_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from klimapuls.settings import Settings

    assert AlertRules().restatement_window == timedelta(days=365)
    monkeypatch.setenv("KLIMAPULS_ALERT_RESTATEMENT_DAYS", "90")
    assert Settings().alert_rules().restatement_window == timedelta(days=90)


def test_feeds_never_seen_are_not_stale_and_cadences_apply() -> None:
    feeds = [
        FeedStatus("counting_site", "s1", "147", T0 - timedelta(hours=47)),
        FeedStatus("counting_site", "s2", "147", T0 - timedelta(hours=49)),
        FeedStatus("fleet_report", "movia", "movia", T0 - timedelta(days=44)),
        FeedStatus("co2_account", "101", "101", T0, 2023),
        FeedStatus("co2_account", "147", "147", T0, 2022),
    ]
    stale = {c.subject for c in feed_conditions(feeds, T0, RULES)}
    assert stale == {"counting_site/s2", "co2_account/147"}


def test_the_dead_letter_rate_needs_enough_events_and_a_high_share() -> None:
    counts = [
        DeadLetterCount("few", 2, 3),
        DeadLetterCount("ok", 990, 10),
        DeadLetterCount("bad", 90, 10),
    ]
    assert [c.subject for c in dead_letter_conditions(counts, RULES)] == ["bad"]


@pytest.mark.parametrize(
    ("rule", "scope", "topic", "facts", "board"),
    [
        ("target_status", "151", "co2", {}, "klimapuls-kommune?var-kommune=151"),
        ("forecast_worsened", "101", "co2", {}, "klimapuls-kommune?var-kommune=101"),
        ("target_status", "1084", "co2", {}, "klimapuls-co2"),
        ("target_status", "movia", "fleet", {}, "klimapuls-fleet"),
        ("target_status", "1084", "mobility", {}, "klimapuls-mobility"),
        (
            "feed_stale",
            "movia",
            "fleet",
            {"family": "fleet_report"},
            "klimapuls-fleet",
        ),
        (
            "feed_stale",
            "147",
            "mobility",
            {"family": "counting_site"},
            "klimapuls-mobility",
        ),
        (
            "feed_stale",
            "157",
            "co2",
            {"family": "co2_account"},
            "klimapuls-kommune?var-kommune=157",
        ),
        ("missing_report", "vip_klima", "initiatives", {}, "klimapuls-initiatives"),
        ("no_tovholder", "vip_klima", "initiatives", {}, "klimapuls-initiatives"),
        ("dead_letter_rate", "-", "operations", {}, "klimapuls-operations"),
    ],
)
def test_a_notice_links_to_the_board_of_its_alert(
    rule: str, scope: str, topic: str, facts: dict[str, str], board: str
) -> None:
    record = {
        "rule": rule,
        "key": f"{rule}:x:{scope}:-",
        "topic": topic,
        "facts": facts,
        "target_id": "x",
    }
    base = "https://grafana.example.org/"
    assert board_link(base, record) == f"https://grafana.example.org/d/{board}"
    stored = {**record, "scope": scope, "key": "other:x:y:-"}
    assert board_link(base, stored) == f"https://grafana.example.org/d/{board}"


def test_a_contact_file_error_names_the_field() -> None:
    with pytest.raises(ContactError, match=r"contacts\.1\.email: 'nope'"):
        parse_contacts(
            {
                "contacts": [
                    {"name": "A", "party": "101", "email": "a@example.org"},
                    {"name": "B", "party": "Ballerup", "email": "nope"},
                ]
            }
        )
    [c] = parse_contacts({"contacts": [{"name": "A", "party": 101, "email": "a@x.dk"}]})
    assert (c.party, c.topic) == ("København", "all")


def test_the_demo_dk2020_targets_are_synthetic_and_some_slip() -> None:
    from klimapuls.core.fold import EventFold
    from klimapuls.core.validation import validate_event

    fold = EventFold(seed_targets=False)
    for e in demo_events(days=1):
        if e.kind == "co2_account" and not e.malformed:
            fold.judge(e.kind, validate_event(e.kind, e.body))  # type: ignore[arg-type]
    measured = MeasuredSeries(fold.facts(), date(2026, 6, 1))
    statuses = set()
    for event in dk2020_demo_targets():
        body = validate_event("target", event.body)
        assert "syntetisk" in body["name"] and "syntetisk" in body["source"]
        target = Target.from_event(body)
        statuses.add(evaluate(target, measured.of(target), date(2026, 6, 1)).status)
    assert len(dk2020_demo_targets()) == 29
    assert {"on_track", "off_track"} <= statuses


def test_alert_settings_become_rules_and_reach_the_service_processes() -> None:
    from klimapuls.settings import Settings

    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=2525, alert_hold_seconds=8, board_url="x"
    )
    rules = settings.alert_rules()
    assert rules.hold == timedelta(seconds=8)
    assert rules.escalate_after == timedelta(days=3)  # the default
    assert settings.alert_env() == {
        "KLIMAPULS_SMTP_HOST": "127.0.0.1",
        "KLIMAPULS_SMTP_PORT": "2525",
        "KLIMAPULS_ALERT_HOLD_SECONDS": "8.0",
        "KLIMAPULS_BOARD_URL": "x",
    }


def test_the_demo_contacts_are_labelled_demo_with_example_addresses() -> None:
    from klimapuls.cli.alerts_demo import demo_contacts

    people = demo_contacts()
    assert len(people) == 31  # 29 municipalities, the region, the secretariat
    assert all(p.name.endswith("(demo)") for p in people)
    assert all(p.address.endswith((".example.org", ".example.com")) for p in people)


def _restated(
    year: int, old: float, new: float, at: datetime, scope: str = "151"
) -> Restatement:
    return Restatement(
        family="co2_account",
        restated_at=at,
        scope=scope,
        municipality_code=scope,
        year=year,
        sector="energy",
        old_value=old,
        new_value=new,
        unit="t CO2e",
        producer="ens",
        old_vintage=date(2024, 5, 1),
        new_vintage=date(2025, 5, 1),
        period=str(year),
    )


def test_a_target_notice_names_the_restatements_since_the_previous_notice() -> None:
    from klimapuls.core.alert_text import notice_record, render_message
    from klimapuls.core.alerting import TargetObservation

    older = _restated(2019, 800.0, 810.0, T0 - timedelta(days=400))
    first = _restated(2021, 700.0, 728.0, T0 - timedelta(days=31))
    elsewhere = _restated(2021, 500.0, 520.0, T0 - timedelta(days=31), "101")
    second = _restated(2022, 690.0, 760.0, T0 + timedelta(days=1))

    def slips(status: str, now: datetime, *found: Any) -> list[Condition]:
        seen = TargetObservation(_change(1, status, 320.0))
        return target_conditions([seen], NO_HOLD, None, found, now)

    # Only the target's own series, within the window before the evaluation.
    [at_risk] = slips("at_risk", T0, older, first, elsewhere, second)
    assert [r["year"] for r in at_risk.facts["restatements"]] == [2021]
    fired = step([], [at_risk], [], T0, NO_HOLD)
    later = T0 + timedelta(days=2)
    [off_track] = slips("off_track", later, older, first, elsewhere, second)
    worse = step(fired.alerts, [off_track], [], later, NO_HOLD)
    [notice] = [*fired.notices, *worse.notices][1:]
    assert notice.kind == "worsened"

    def text(n: Any) -> str:
        return render_message(
            [notice_record(n)],
            key="k",
            channel="email",
            address="a@example.org",
            recipient="A",
            board_url="https://grafana.example.org",
        ).text

    assert (
        "Rettet: 2021 fra 700 til 728 t CO2e (+4,0 %), "
        "årgang 2024-05-01 -> 2025-05-01" in text(fired.notices[0])
    )
    # The worsened notice names only what is new since the first one.
    again = text(notice)
    assert "Rettet: 2021" not in again
    assert "Rettet: 2022 fra 690 til 760 t CO2e (+10,1 %)" in again
    assert "status i fare -> ikke på sporet" in again
