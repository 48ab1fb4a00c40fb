"""The CO2 service's worker: `co2-account` in, emission series out.

Accounts come in bursts (every municipality re-importing its restated
accounts after a method change), so this service reads them with the
plain batch worker (`klimapuls.bulk`), as the mobility and fleet services
do: a batch as soon as the broker has one, no per-event stream, and a stop
derives the open window before it leaves. Its handler is loaded while the
worker joins its group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from klimapuls.bulk import series_worker
from klimapuls.co2 import CO2_ACCOUNT

if TYPE_CHECKING:
    from klimapuls.bulk import BulkWorker
    from klimapuls.co2.handlers import Co2Handler
    from klimapuls.settings import Settings

__all__ = ["SERVICE", "create_worker"]

SERVICE = "co2"


def _owner() -> type[Co2Handler]:
    from klimapuls.co2.handlers import Co2Handler

    return Co2Handler


def create_worker(settings: Settings) -> BulkWorker:
    """Build the worker; settings come from the entry point."""
    return series_worker(settings, SERVICE, CO2_ACCOUNT, _owner)
