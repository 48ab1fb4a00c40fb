"""Against a live Grafana, when GRAFANA_URL names one; skipped otherwise."""

from __future__ import annotations

import os

import pytest

from klimapuls.dashboards import grafana_api, load_dashboards, push_dashboards
from klimapuls.settings import Settings

pytestmark = pytest.mark.skipif(
    not os.environ.get("GRAFANA_URL"), reason="GRAFANA_URL is not set"
)


def test_push_creates_every_dashboard_with_all_its_panels() -> None:
    api = grafana_api(Settings().grafana)
    uids = push_dashboards(api)
    for dashboard in load_dashboards():
        stored = api.dashboard.get_dashboard(dashboard["uid"])["dashboard"]
        assert stored["title"] == dashboard["title"]
        assert len(stored["panels"]) == len(dashboard["panels"])
    assert len(uids) == len(load_dashboards())
