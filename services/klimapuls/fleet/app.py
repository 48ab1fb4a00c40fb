"""The fleet service's faust app: `fleet-status` and `target` in, shares out."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
from sqlalchemy import Engine

from klimapuls.core.settings import Settings
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.streaming import service_app

__all__ = ["SERVICE", "create_app"]

SERVICE = "fleet"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""

    def handler(engine: Engine) -> FleetHandler:
        return FleetHandler(engine, _now, name=SERVICE)

    return service_app(settings, SERVICE, ("fleet_status", "target"), handler)
