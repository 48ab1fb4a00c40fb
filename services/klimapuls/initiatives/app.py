"""The initiatives service's faust app: `initiative-status` in, rows out."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
from sqlalchemy import Engine

from klimapuls.core.settings import Settings
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.streaming import service_app

__all__ = ["SERVICE", "create_app"]

SERVICE = "initiatives"


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""

    def handler(engine: Engine) -> InitiativeHandler:
        return InitiativeHandler(engine, _now, name=SERVICE)

    return service_app(
        settings, SERVICE, ("initiative_status",), handler, publishes_status=False
    )
