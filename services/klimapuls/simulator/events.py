"""The simulated message and what every event family shares.

`SimulatedEvent` is one message of the stream (a valid event or a malformed
body); `SIMULATOR_PRODUCER` labels every simulated event, and `DEFAULT_SEED`
and `DEFAULT_START` are the stream's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from klimapuls.core.deadletter import dead_letter_id

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_START",
    "SIMULATOR_PRODUCER",
    "SimulatedEvent",
    "iso",
]

SIMULATOR_PRODUCER = "klimapuls-simulator (synthetic)"
DEFAULT_SEED = 2045
#: A Monday in the domain's present: accounts up to 2025 are out by then.
DEFAULT_START = date(2026, 6, 1)


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    """One simulated message: a valid event, or a malformed body and its defect.

    `body` is the event (a dict) or, for a malformed message, the raw bytes to
    send as is; `defect` names the field validation rejects (`$` for a body
    that is not JSON).
    """

    kind: str
    body: dict[str, Any] | bytes
    defect: str | None = None

    @property
    def malformed(self) -> bool:
        """True for a body meant to be rejected and dead-lettered."""
        return isinstance(self.body, bytes)

    @property
    def event_id(self) -> str | None:
        """The event id of a valid event (None for malformed bodies)."""
        return None if isinstance(self.body, bytes) else str(self.body["event_id"])

    @property
    def dead_letter_id(self) -> str | None:
        """The id a service gives the dead letter of a malformed body."""
        if not isinstance(self.body, bytes):
            return None
        return dead_letter_id(self.kind, self.body)


def iso(moment: datetime) -> str:
    """`moment` as ISO 8601 text in UTC."""
    return moment.astimezone(UTC).isoformat()
