"""The fleet service's worker: `fleet-status` in, fleet shares out.

Snapshots come in bursts (an operator's whole register at once), so this
service reads them with the plain batch worker (`klimapuls.bulk`), as the
mobility service does: faust's per-event stream cost about ten times the
handler's own work per snapshot, on the cores the counts need. Its handler
is loaded while the worker joins its group.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from klimapuls.bulk import BulkWorker
from klimapuls.fleet import FLEET_STATUS

if TYPE_CHECKING:
    from klimapuls.fleet.handlers import FleetHandler
    from klimapuls.settings import Settings

__all__ = ["SERVICE", "create_worker"]

SERVICE = "fleet"


def _now() -> datetime:
    return datetime.now(UTC)


def _handler(settings: Settings) -> FleetHandler:
    from klimapuls.fleet.handlers import FleetHandler
    from klimapuls.storage.db import create_db_engine

    engine = create_db_engine(settings.require_database_url())
    return FleetHandler(engine, _now, SERVICE, settings.derive_seconds)


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    settings.require_database_url()  # a missing URL is named before any join
    return BulkWorker(settings, SERVICE, (FLEET_STATUS,), partial(_handler, settings))
