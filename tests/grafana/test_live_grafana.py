"""Against a live Grafana, when GRAFANA_URL names one; skipped otherwise."""

from __future__ import annotations

import os

import pytest

from klimapuls.boards import all_boards
from klimapuls.boards.alert_rules import ALERT_FOLDER_UID, RULE_GROUP, alert_rules
from klimapuls.boards.provisioning import grafana_api, provision
from klimapuls.settings import Settings

pytestmark = [
    pytest.mark.grafana,
    pytest.mark.skipif(
        not os.environ.get("GRAFANA_URL"), reason="GRAFANA_URL is not set"
    ),
]


def _api():  # type: ignore[no-untyped-def]
    settings = Settings().grafana
    token = settings.token.get_secret_value() if settings.token else None
    return grafana_api(settings.url or "", token, settings)


def test_provision_creates_everything_and_a_second_run_changes_nothing() -> None:
    api = _api()
    provision(api, all_boards())
    second = provision(api, all_boards())
    assert {c.action for c in second} == {"unchanged"}, second
    for board in all_boards():
        stored = api.dashboard.get_dashboard(board.uid)["dashboard"]
        assert stored["title"] == board.title
        assert len(stored["panels"]) == len(board.json["panels"])
    group = api.alertingprovisioning.get_rule_group(ALERT_FOLDER_UID, RULE_GROUP)
    assert {r["uid"] for r in group["rules"]} == {r.uid for r in alert_rules()}
