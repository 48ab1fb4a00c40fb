"""The mobility service's worker: `mobility-count` in, rollups out.

Counts are the bulk of all traffic, so this service reads them with the
plain batch worker (`klimapuls.bulk`), not a faust app. Its handler (the
database and domain code) is imported once before the set forks its
workers (`preload`), and a lone worker loads it while its consumer starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klimapuls.bulk import series_worker
from klimapuls.mobility import MOBILITY_COUNT

if TYPE_CHECKING:
    from klimapuls.bulk import BulkWorker
    from klimapuls.mobility.handlers import MobilityHandler
    from klimapuls.settings import Settings

__all__ = ["SERVICE", "create_worker", "preload"]

SERVICE = "mobility"


def _owner() -> type[MobilityHandler]:
    from klimapuls.mobility.handlers import MobilityHandler

    return MobilityHandler


def preload() -> None:
    """Import the handler's modules (before the workers are forked)."""
    _owner()


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    return series_worker(settings, SERVICE, MOBILITY_COUNT, _owner)
