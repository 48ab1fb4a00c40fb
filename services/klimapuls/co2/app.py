"""The CO2 service's worker: `co2-account` in, emission series out.

Accounts come in bursts (every municipality re-importing its restated
accounts after a method change), so this service reads them with the
plain batch worker (`klimapuls.bulk`), as the mobility and fleet services
do: a batch as soon as the broker has one, no per-event stream, and a stop
derives the open window before it leaves. Its handler is loaded while the
worker joins its group.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from klimapuls.bulk import BulkWorker
from klimapuls.co2 import CO2_ACCOUNT

if TYPE_CHECKING:
    from klimapuls.co2.handlers import Co2Handler
    from klimapuls.settings import Settings

__all__ = ["SERVICE", "create_worker"]

SERVICE = "co2"


def _now() -> datetime:
    return datetime.now(UTC)


def _handler(settings: Settings) -> Co2Handler:
    from klimapuls.co2.handlers import Co2Handler
    from klimapuls.storage.db import create_db_engine

    engine = create_db_engine(settings.require_database_url())
    return Co2Handler(engine, _now, SERVICE, settings.derive_seconds)


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    settings.require_database_url()  # a missing URL is named before any join
    return BulkWorker(settings, SERVICE, (CO2_ACCOUNT,), partial(_handler, settings))
