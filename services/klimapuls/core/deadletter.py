"""Dead letters: rejected events, with the reason, as they travel and rest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from klimapuls.core.errors import EventValidationError

__all__ = ["DeadLetter", "dead_letter_id"]


def dead_letter_id(kind: str | None, payload: str) -> str:
    """Identity of a rejected event: the same bad payload is stored once."""
    digest = hashlib.sha256(f"{kind or ''}\n{payload}".encode()).hexdigest()
    return f"dl-{digest[:40]}"


def _event_id_of(payload: str) -> str | None:
    try:
        event = json.loads(payload)
    except (ValueError, TypeError):
        return None
    value = event.get("event_id") if isinstance(event, dict) else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class DeadLetter:
    """A rejected event: where it came from, why, and its exact payload."""

    kind: str | None
    origin: str
    field: str
    reason: str
    payload: str
    rejected_by: str
    rejected_at: datetime
    issues: list[dict[str, str]] = dataclass_field(default_factory=list)
    event_id: str | None = None
    dead_letter_id: str = ""

    @classmethod
    def from_error(
        cls,
        error: EventValidationError,
        *,
        kind: str | None,
        origin: str,
        payload: bytes | str,
        rejected_by: str,
        rejected_at: datetime,
    ) -> DeadLetter:
        """Describe why `payload` was rejected."""
        text = (
            payload.decode("utf-8", "replace")
            if isinstance(payload, bytes)
            else payload
        )
        return cls(
            kind=kind,
            origin=origin,
            field=error.field,
            reason=str(error),
            payload=text,
            rejected_by=rejected_by,
            rejected_at=rejected_at,
            issues=[{"field": i.field, "reason": i.reason} for i in error.issues],
            event_id=_event_id_of(text),
            dead_letter_id=dead_letter_id(kind, text),
        )

    def to_json(self) -> bytes:
        """The message body on the dead-letter topic."""
        body = asdict(self)
        body["rejected_at"] = self.rejected_at.isoformat()
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        """Parse a dead-letter topic message."""
        body: dict[str, Any] = json.loads(raw)
        body["rejected_at"] = datetime.fromisoformat(body["rejected_at"])
        return cls(**body)
