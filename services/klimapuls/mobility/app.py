"""The mobility service's faust app: `mobility-count` and `target` in."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
from sqlalchemy import Engine

from klimapuls.core.settings import Settings
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.streaming import service_app

__all__ = ["SERVICE", "create_app"]

SERVICE = "mobility"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""

    def handler(engine: Engine) -> MobilityHandler:
        return MobilityHandler(engine, _now, name=SERVICE)

    return service_app(settings, SERVICE, ("mobility_count", "target"), handler)
