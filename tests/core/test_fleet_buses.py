"""A bus listed under two units of an operator on a date counts once (pure)."""

from __future__ import annotations

from datetime import date
from typing import Any

from klimapuls.core.fleet import BusRegister, bus_clash_issue
from tests.fleet.factories import fleet_event


def _listed(garage: str, *buses: str, at: str = "2025-04-02T08:00:00+00:00") -> Any:
    event = fleet_event(
        "movia", "2025-04-01", garage=garage, reported_at=at, diesel=len(buses)
    )
    return {**event, "bus_ids": list(buses)}


def test_a_bus_another_garage_lists_that_day_is_refused_naming_the_first() -> None:
    known = {("movia", date(2025, 4, 1), "1001"): ("movia", "", "Ballerup")}
    issue = bus_clash_issue(known, _listed("Gladsaxe", "1003", "1001"))
    assert issue is not None and issue.field == "bus_ids"
    assert "'1001'" in issue.reason and "'Ballerup'" in issue.reason


def test_the_same_garage_listing_its_bus_again_is_no_clash() -> None:
    known = {("movia", date(2025, 4, 1), "1001"): ("movia", "", "Ballerup")}
    assert bus_clash_issue(known, _listed("Ballerup", "1001")) is None


def test_another_date_or_operator_is_no_clash() -> None:
    known = {("movia", date(2025, 3, 1), "1001"): ("movia", "", "Ballerup")}
    assert bus_clash_issue(known, _listed("Gladsaxe", "1001")) is None
    other = {("arriva", date(2025, 4, 1), "1001"): ("arriva", "", "Ballerup")}
    assert bus_clash_issue(other, _listed("Gladsaxe", "1001")) is None


def test_reports_without_bus_ids_are_trusted_as_counted() -> None:
    register = BusRegister()
    assert register.admit(_listed("Ballerup", "1001")) is None
    unlisted = fleet_event("movia", "2025-04-01", garage="Gladsaxe", diesel=1)
    assert register.admit(unlisted) is None


def test_a_restated_list_replaces_the_garages_old_one() -> None:
    register = BusRegister()
    assert register.admit(_listed("Ballerup", "1001", "1002")) is None
    restated = _listed("Ballerup", "1002", at="2025-04-03T08:00:00+00:00")
    assert register.admit(restated) is None
    assert register.admit(_listed("Gladsaxe", "1001")) is None
    assert register.admit(_listed("Gladsaxe", "1002")) is not None


def test_an_older_report_arriving_late_leaves_the_newer_list() -> None:
    register = BusRegister()
    newer = _listed("Ballerup", "1002", at="2025-04-03T08:00:00+00:00")
    assert register.admit(newer) is None
    assert register.admit(_listed("Ballerup", "1001", "1002")) is None
    assert register.lists == {(("movia", "", "Ballerup"), date(2025, 4, 1)): ("1002",)}
