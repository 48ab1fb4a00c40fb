"""The mobility service's faust app: `mobility-count` in, rollups out."""

from __future__ import annotations

from datetime import UTC, datetime

import faust

from klimapuls.mobility.handlers import MOBILITY_COUNT, MobilityHandler
from klimapuls.settings import Settings
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import service_app

__all__ = ["SERVICE", "create_app"]

SERVICE = "mobility"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    engine = create_db_engine(settings.require_database_url())
    handler = MobilityHandler(engine, _now, SERVICE, settings.derive_seconds)
    return service_app(settings, SERVICE, (MOBILITY_COUNT,), handler)
