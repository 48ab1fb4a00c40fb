"""Dead letters: rejected events, with the reason, as they travel and rest.

A dead letter must never be the next poison: it keeps the raw payload once,
safely encoded, and cut to a documented size, so any bytes at all (a NUL,
invalid UTF-8, JSON nested 10,000 deep, a 5 MB value) give a small message
every producer can send and every column can hold:

- `payload`: the first `MAX_PAYLOAD_BYTES` bytes of the raw message, as text
  when they are UTF-8 without NUL or other control characters
  (`payload_encoding` `utf-8`), else base64 (`base64`);
- `payload_size` and `payload_sha256`: the size and SHA-256 of the whole raw
  message, so a cut payload can still be matched to its source;
- `payload_truncated`: whether the payload was cut;
- every reason and field path is cut to a few hundred characters, and NUL
  characters and lone surrogates are written out as escapes.

The whole message stays under `MAX_DEAD_LETTER_BYTES`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any, Literal

from klimapuls.core.errors import EventValidationError

__all__ = [
    "MAX_DEAD_LETTER_BYTES",
    "MAX_FIELD_CHARS",
    "MAX_ISSUES",
    "MAX_PAYLOAD_BYTES",
    "MAX_REASON_CHARS",
    "DeadLetter",
    "PayloadEncoding",
    "clip",
    "dead_letter_id",
    "safe_text",
]

#: Raw bytes of the rejected message kept in a dead letter (the rest is cut).
MAX_PAYLOAD_BYTES = 64 * 1024
#: Longest reason kept per issue, and for the joined `reason`.
MAX_REASON_CHARS = 300
#: Longest field path kept.
MAX_FIELD_CHARS = 200
#: Most issues kept per dead letter (the first ones).
MAX_ISSUES = 30
#: Upper bound of a dead letter's JSON body (base64 payload, issues, reason).
MAX_DEAD_LETTER_BYTES = 128 * 1024

PayloadEncoding = Literal["utf-8", "base64"]

# A parse just to find `event_id` is skipped for larger payloads.
_MAX_PARSE_BYTES = 1024 * 1024
_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r"}


def dead_letter_id(kind: str | None, payload: bytes | str) -> str:
    """Identity of a rejected message: the same bad bytes are stored once."""
    raw = _as_bytes(payload)
    digest = hashlib.sha256((kind or "").encode() + b"\n" + raw).hexdigest()
    return f"dl-{digest[:40]}"


def _as_bytes(payload: bytes | str) -> bytes:
    if isinstance(payload, bytes):
        return payload
    # Text read from files may carry escaped undecodable bytes or surrogates.
    return payload.encode("utf-8", "surrogatepass")


def safe_text(value: object, limit: int) -> str:
    """`value` as text any column and any JSON encoder accepts, at most `limit`.

    NUL becomes the escape backslash-u0000, lone surrogates backslash-udXXX; longer
    text is cut and ends in `…`.
    """
    text = str(value).replace("\x00", "\\u0000")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return clip(text, limit)


def clip(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters (ending in `…`) if longer."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _encode(raw: bytes) -> tuple[str, PayloadEncoding]:
    """The first `MAX_PAYLOAD_BYTES` of `raw`, as text if that is safe."""
    cut = raw[:MAX_PAYLOAD_BYTES]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(cut).decode("ascii"), "base64"
    # Valid UTF-8: only a character split by the cut can fail; drop it.
    text = cut.decode("utf-8", "ignore")
    if any(c in _CONTROL for c in text):
        return base64.b64encode(cut).decode("ascii"), "base64"
    if len(json.dumps(text, ensure_ascii=False).encode()) > MAX_PAYLOAD_BYTES * 4 // 3:
        # Quotes and backslashes double in JSON; base64 is smaller then.
        return base64.b64encode(cut).decode("ascii"), "base64"
    return text, "utf-8"


def _event_id_of(raw: bytes) -> str | None:
    if len(raw) > _MAX_PARSE_BYTES:
        return None
    try:
        event = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return None
    value = event.get("event_id") if isinstance(event, dict) else None
    return safe_text(value, MAX_FIELD_CHARS) if isinstance(value, str) else None


def _issues(issues: Any) -> list[dict[str, str]]:
    if not isinstance(issues, list):
        return []
    return [
        {
            "field": safe_text(i.get("field", "$"), MAX_FIELD_CHARS),
            "reason": safe_text(i.get("reason", ""), MAX_REASON_CHARS),
        }
        for i in issues[:MAX_ISSUES]
        if isinstance(i, dict)
    ]


@dataclass(frozen=True)
class DeadLetter:
    """A rejected event: where it came from, why, and its raw payload (cut)."""

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
    payload_encoding: PayloadEncoding = "utf-8"
    payload_size: int = 0
    payload_sha256: str = ""
    payload_truncated: bool = False

    @classmethod
    def rejected(
        cls,
        *,
        kind: str | None,
        origin: str,
        payload: bytes | str,
        field: str,
        reason: str,
        rejected_by: str,
        rejected_at: datetime,
        issues: list[dict[str, str]] | None = None,
    ) -> DeadLetter:
        """Describe a rejected message from its raw bytes and the reason."""
        raw = _as_bytes(payload)
        text, encoding = _encode(raw)
        listed = _issues(issues if issues is not None else [])
        return cls(
            kind=safe_text(kind, MAX_FIELD_CHARS) if kind is not None else None,
            origin=safe_text(origin, MAX_FIELD_CHARS),
            field=safe_text(field, MAX_FIELD_CHARS),
            reason=safe_text(reason, MAX_REASON_CHARS * 4),
            payload=text,
            rejected_by=safe_text(rejected_by, MAX_FIELD_CHARS),
            rejected_at=rejected_at,
            issues=listed
            or [
                {
                    "field": safe_text(field, MAX_FIELD_CHARS),
                    "reason": safe_text(reason, MAX_REASON_CHARS),
                }
            ],
            event_id=_event_id_of(raw),
            dead_letter_id=dead_letter_id(kind, raw),
            payload_encoding=encoding,
            payload_size=len(raw),
            payload_sha256=hashlib.sha256(raw).hexdigest(),
            payload_truncated=len(raw) > MAX_PAYLOAD_BYTES,
        )

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
        return cls.rejected(
            kind=kind,
            origin=origin,
            payload=payload,
            field=error.field,
            reason=str(error),
            rejected_by=rejected_by,
            rejected_at=rejected_at,
            issues=[{"field": i.field, "reason": i.reason} for i in error.issues],
        )

    def raw_payload(self) -> bytes:
        """The kept bytes of the rejected message (all of them unless truncated)."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")

    def to_json(self) -> bytes:
        """The message body on the dead-letter topic (`dead_letter.v1`)."""
        body = {"schema": "dead_letter.v1", **asdict(self)}
        body["rejected_at"] = self.rejected_at.isoformat()
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        """Parse a dead-letter topic message; `ValueError` if it is not one.

        Every text is cleaned again and the payload cut again: the topic is
        open to any producer, and what it holds must fit the table.
        """
        try:
            body = json.loads(raw)
        except (ValueError, TypeError, RecursionError) as exc:
            raise ValueError(f"not a JSON dead letter: {clip(str(exc), 200)}") from exc
        if not isinstance(body, dict):
            raise ValueError("a dead letter must be a JSON object")
        try:
            return cls._from_body(body)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ValueError(f"not a dead letter: {clip(str(exc), 200)}") from exc

    @classmethod
    def _from_body(cls, body: dict[str, Any]) -> DeadLetter:
        payload = body["payload"]
        encoding = body.get("payload_encoding", "utf-8")
        if not isinstance(payload, str) or encoding not in ("utf-8", "base64"):
            raise ValueError("payload must be text in utf-8 or base64")
        raw = (
            base64.b64decode(payload, validate=True)
            if encoding == "base64"
            else (_as_bytes(payload))
        )
        text, kept = _encode(raw)
        size = body.get("payload_size")
        digest = body.get("payload_sha256")
        kind = body.get("kind")
        event_id = body.get("event_id")
        return cls(
            kind=safe_text(kind, MAX_FIELD_CHARS) if kind is not None else None,
            origin=safe_text(body["origin"], MAX_FIELD_CHARS),
            field=safe_text(body["field"], MAX_FIELD_CHARS),
            reason=safe_text(body["reason"], MAX_REASON_CHARS * 4),
            payload=text,
            rejected_by=safe_text(body["rejected_by"], MAX_FIELD_CHARS),
            rejected_at=datetime.fromisoformat(body["rejected_at"]),
            issues=_issues(body.get("issues")),
            event_id=(
                safe_text(event_id, MAX_FIELD_CHARS) if event_id is not None else None
            ),
            dead_letter_id=safe_text(
                body.get("dead_letter_id") or dead_letter_id(kind, raw), 64
            ),
            payload_encoding=kept,
            payload_size=size if isinstance(size, int) and size >= 0 else len(raw),
            payload_sha256=(
                digest
                if isinstance(digest, str) and len(digest) == 64
                else hashlib.sha256(raw).hexdigest()
            ),
            payload_truncated=bool(body.get("payload_truncated"))
            or len(raw) > MAX_PAYLOAD_BYTES,
        )
