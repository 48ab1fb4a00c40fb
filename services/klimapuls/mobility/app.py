"""The mobility service's worker: `mobility-count` in, rollups out.

Counts are the bulk of all traffic, so this service reads them with the
plain batch worker (`klimapuls.bulk`), not a faust app.
"""

from __future__ import annotations

from datetime import UTC, datetime

from klimapuls.bulk import BulkWorker
from klimapuls.mobility.handlers import MOBILITY_COUNT, MobilityHandler
from klimapuls.settings import Settings
from klimapuls.storage.db import create_db_engine

__all__ = ["SERVICE", "create_worker"]

SERVICE = "mobility"


def _now() -> datetime:
    return datetime.now(UTC)


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    engine = create_db_engine(settings.require_database_url())
    handler = MobilityHandler(engine, _now, SERVICE, settings.derive_seconds)
    return BulkWorker(settings, SERVICE, (MOBILITY_COUNT,), handler)
