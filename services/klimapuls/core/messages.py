"""Outbound messages: what services publish, as typed objects with one JSON form.

Each class is the contract of one topic, with a JSON Schema in `schemas/`
(checked in the schema tests like the inbound families):

- `TargetStatusChange` (`target_status.v1`, topic `target-status`): a
  target's status or staleness changed, or its forecast moved (by more than
  `klimapuls.core.progress.FORECAST_EPSILON`; `previous_forecast_value`
  then says from where). Published by the targets service from its outbox,
  in order, for alerts and other consumers. `id` is the outbox row: a
  consumer that keys on it drops the rare repeat.
- `SeriesChange` (`series_change.v1`, topic `series-change`): a service
  that owns a measured series (emissions, fleet shares, trips) stored new
  figures; the targets service recomputes progress when it hears it. Sent
  after the commit for every batch with valid events, duplicates included,
  so a batch replayed after a crash still announces its change.

Dead letters (`dead_letter.v1`) are `klimapuls.core.deadletter.DeadLetter`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from klimapuls.core.model import Progress, Status

__all__ = ["LastEvaluation", "SeriesChange", "TargetStatusChange"]

#: What was logged last of a target: (status, stale, forecast).
LastEvaluation = tuple[Status, bool, float | None]


@dataclass(frozen=True)
class TargetStatusChange:
    """A target's status, staleness or forecast changed at `changed_at`."""

    target_id: str
    version: int
    name: str
    scope: str
    indicator: str
    unit: str
    previous_status: Status | None
    status: Status
    previous_stale: bool | None
    stale: bool
    latest_year: int | None
    latest_value: float | None
    target_year: int | None
    target_value: float | None
    path_value: float | None
    gap_to_path: float | None
    forecast_value: float | None
    required_annual_reduction: float | None
    changed_at: datetime
    #: The forecast of the evaluation logged before this one (None: none).
    previous_forecast_value: float | None = None
    #: The outbox row; None until the change is stored.
    id: int | None = None

    schema = "target_status.v1"

    @classmethod
    def between(
        cls,
        previous: LastEvaluation | tuple[Status, bool] | None,
        progress: Progress,
        changed_at: datetime,
    ) -> TargetStatusChange:
        """The change from `previous` (status, stale, forecast) to `progress`."""
        return cls(
            target_id=progress.target_id,
            version=progress.version,
            name=progress.name,
            scope=progress.scope,
            indicator=progress.indicator,
            unit=progress.unit,
            previous_status=previous[0] if previous else None,
            status=progress.status,
            previous_stale=previous[1] if previous else None,
            stale=progress.stale,
            latest_year=progress.latest_year,
            latest_value=progress.latest_value,
            target_year=progress.target_year,
            target_value=progress.target_value,
            path_value=progress.path_value,
            gap_to_path=progress.gap_to_path,
            forecast_value=progress.forecast_value,
            required_annual_reduction=progress.required_annual_reduction,
            changed_at=changed_at,
            # A (status, stale) pair (no forecast known) is accepted too.
            previous_forecast_value=(
                previous[2] if previous is not None and len(previous) > 2 else None
            ),
        )

    def as_json(self) -> dict[str, Any]:
        """The message body as a JSON object."""
        body = {"schema": self.schema, **asdict(self)}
        body["changed_at"] = self.changed_at.isoformat()
        return body

    def to_json(self) -> bytes:
        """The message body on `target-status`."""
        return json.dumps(self.as_json(), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> TargetStatusChange:
        """Parse a `target-status` message."""
        body: dict[str, Any] = json.loads(raw)
        body.pop("schema", None)
        body["changed_at"] = datetime.fromisoformat(body["changed_at"])
        return cls(**body)


@dataclass(frozen=True)
class SeriesChange:
    """A series owner stored figures of these indicators and scopes."""

    producer: str
    indicators: tuple[str, ...]
    scopes: tuple[str, ...]
    changed_at: datetime

    schema = "series_change.v1"

    @classmethod
    def of(
        cls,
        producer: str,
        indicators: Iterable[str],
        scopes: Iterable[str],
        changed_at: datetime,
    ) -> SeriesChange:
        """A change notice with sorted, distinct indicators and scopes."""
        return cls(
            producer,
            tuple(sorted(set(indicators))),
            tuple(sorted(set(scopes))),
            changed_at,
        )

    @property
    def event_id(self) -> str:
        """A stable id of this notice (a repeat of the same notice has the same)."""
        text = json.dumps(
            [self.producer, self.indicators, self.scopes, self.changed_at.isoformat()]
        )
        return f"series:{hashlib.sha256(text.encode()).hexdigest()[:32]}"

    def as_json(self) -> dict[str, Any]:
        """The message body as a JSON object."""
        return {
            "schema": self.schema,
            "event_id": self.event_id,
            "producer": self.producer,
            "indicators": list(self.indicators),
            "scopes": list(self.scopes),
            "changed_at": self.changed_at.isoformat(),
        }

    def to_json(self) -> bytes:
        """The message body on `series-change`."""
        return json.dumps(self.as_json(), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> SeriesChange:
        """Parse a `series-change` message (validated first by the reader)."""
        body: dict[str, Any] = json.loads(raw)
        return cls(
            producer=body["producer"],
            indicators=tuple(body["indicators"]),
            scopes=tuple(body["scopes"]),
            changed_at=datetime.fromisoformat(body["changed_at"]),
        )
