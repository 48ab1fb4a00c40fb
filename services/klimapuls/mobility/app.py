"""The mobility service's worker: `mobility-count` in, rollups out.

Counts are the bulk of all traffic, so this service reads them with the
plain batch worker (`klimapuls.bulk`), not a faust app. Its handler (the
database and domain code) is loaded while the worker joins its group.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from klimapuls.bulk import BulkWorker
from klimapuls.mobility import MOBILITY_COUNT

if TYPE_CHECKING:
    from klimapuls.mobility.handlers import MobilityHandler
    from klimapuls.settings import Settings

__all__ = ["SERVICE", "create_worker"]

SERVICE = "mobility"


def _now() -> datetime:
    return datetime.now(UTC)


def _handler(settings: Settings) -> MobilityHandler:
    from klimapuls.mobility.handlers import MobilityHandler
    from klimapuls.storage.db import create_db_engine

    engine = create_db_engine(settings.require_database_url())
    return MobilityHandler(engine, _now, SERVICE, settings.derive_seconds)


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    settings.require_database_url()  # a missing URL is named before any join
    return BulkWorker(settings, SERVICE, (MOBILITY_COUNT,), partial(_handler, settings))
