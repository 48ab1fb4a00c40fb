"""The fleet service's worker: `fleet-status` in, fleet shares out.

Snapshots come in bursts (an operator's whole register at once), so this
service reads them with the plain batch worker (`klimapuls.bulk`), as the
mobility service does: faust's per-event stream cost about ten times the
handler's own work per snapshot, on the cores the counts need. Its handler
is loaded while the worker joins its group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klimapuls.bulk import series_worker
from klimapuls.fleet import FLEET_STATUS

if TYPE_CHECKING:
    from klimapuls.bulk import BulkWorker
    from klimapuls.fleet.handlers import FleetHandler
    from klimapuls.settings import Settings

__all__ = ["SERVICE", "create_worker"]

SERVICE = "fleet"


def _owner() -> type[FleetHandler]:
    from klimapuls.fleet.handlers import FleetHandler

    return FleetHandler


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    return series_worker(settings, SERVICE, FLEET_STATUS, _owner)
