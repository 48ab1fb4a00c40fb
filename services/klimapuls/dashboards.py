"""Publish the dashboards under `grafana/` to a running Grafana (grafana-client).

Production Grafana normally loads them by file provisioning (`deploy/`); this
is for a Grafana that is already running, e.g. a team's shared instance.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from grafana_client.api import GrafanaApi

from klimapuls.core.errors import ConfigurationError
from klimapuls.settings import GrafanaSettings

__all__ = ["grafana_api", "load_dashboards", "push_dashboards"]


def load_dashboards() -> list[dict[str, Any]]:
    """Every dashboard JSON shipped in `klimapuls.grafana/dashboards/`."""
    folder = resources.files("klimapuls.grafana").joinpath("dashboards")
    return [
        json.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]


def grafana_api(settings: GrafanaSettings) -> GrafanaApi:
    """A client for `GRAFANA_URL`, with a token or user and password."""
    if not settings.url:
        raise ConfigurationError(
            "GRAFANA_URL is not set: give e.g. http://grafana:3000"
        )
    credential: str | tuple[str, str] | None = None
    if settings.token is not None:
        credential = settings.token.get_secret_value()
    elif settings.user and settings.password is not None:
        credential = (settings.user, settings.password.get_secret_value())
    return GrafanaApi.from_url(settings.url, credential=credential)


def push_dashboards(api: GrafanaApi) -> list[str]:
    """Create or overwrite every dashboard (by uid); returns their uids."""
    uids = []
    for dashboard in load_dashboards():
        body = {**dashboard, "id": None}
        api.dashboard.update_dashboard({"dashboard": body, "overwrite": True})
        uids.append(dashboard["uid"])
    return uids
