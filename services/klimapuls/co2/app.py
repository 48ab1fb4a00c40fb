"""The CO2 service's faust app: `co2-account` in, emission series out."""

from __future__ import annotations

from datetime import UTC, datetime

import faust

from klimapuls.co2.handlers import CO2_ACCOUNT, Co2Handler
from klimapuls.settings import Settings
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import service_app

__all__ = ["SERVICE", "create_app"]

SERVICE = "co2"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    engine = create_db_engine(settings.require_database_url())
    handler = Co2Handler(engine, _now, SERVICE, settings.derive_seconds)
    return service_app(settings, SERVICE, (CO2_ACCOUNT,), handler)
