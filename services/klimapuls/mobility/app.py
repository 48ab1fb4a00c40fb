"""The mobility service's worker: `mobility-count` in, rollups out.

Counts are the bulk of all traffic, so this service reads them with the
plain batch worker (`klimapuls.bulk`), not a faust app. Its handler (the
database and domain code) is loaded while the worker joins its group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klimapuls.bulk import series_worker
from klimapuls.mobility import MOBILITY_COUNT

if TYPE_CHECKING:
    from klimapuls.bulk import BulkWorker
    from klimapuls.mobility.handlers import MobilityHandler
    from klimapuls.settings import Settings

__all__ = ["SERVICE", "create_worker"]

SERVICE = "mobility"


def _owner() -> type[MobilityHandler]:
    from klimapuls.mobility.handlers import MobilityHandler

    return MobilityHandler


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    return series_worker(settings, SERVICE, MOBILITY_COUNT, _owner)
