"""The CO2 service's faust app: `co2-account` and `target` in, progress out."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
from sqlalchemy import Engine

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.settings import Settings
from klimapuls.streaming import service_app

__all__ = ["SERVICE", "create_app"]

SERVICE = "co2"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""

    def handler(engine: Engine) -> Co2Handler:
        return Co2Handler(engine, _now, name=SERVICE)

    return service_app(settings, SERVICE, ("co2_account", "target"), handler)
