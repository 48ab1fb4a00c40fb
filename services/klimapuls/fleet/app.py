"""The fleet service's faust app: `fleet-status` in, fleet shares out."""

from __future__ import annotations

from datetime import UTC, datetime

import faust

from klimapuls.fleet.handlers import FLEET_STATUS, FleetHandler
from klimapuls.settings import Settings
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import service_app

__all__ = ["SERVICE", "create_app"]

SERVICE = "fleet"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    engine = create_db_engine(settings.require_database_url())
    handler = FleetHandler(engine, _now, SERVICE, settings.derive_seconds)
    return service_app(settings, SERVICE, (FLEET_STATUS,), handler)
