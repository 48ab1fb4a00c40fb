"""The HTTP gateway's app (FastAPI): producers POST events, Kafka gets them.

`POST /v1/events` takes one event or a batch, from a producer holding an
API token (`Authorization: Bearer kpt_...`). In order: a body declared too
large is refused (413), the token is checked in constant time (401), the
token's rate (429, with `Retry-After`), the body read up to the limit (413),
every event stamped with the token's producer, validated (422, every field
path and reason) and authorised (403); then all events are sent and the
answer, 202 with their ids, waits until the broker acknowledged every one.
A broker that is away or slow gives 503 with a clear body. Nothing is
written for a refused request; its refused events go to `dead-letter`.
The gateway never answers 500: an unexpected error is logged and answered
503, as a retry may succeed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Engine

from klimapuls.core.deadletter import DeadLetter
from klimapuls.core.errors import (
    ConfigurationError,
    EventValidationError,
    FieldIssue,
    RetryableError,
)
from klimapuls.core.tokens import parse_token, secret_matches
from klimapuls.core.validation import EVENT_KINDS, load_schema, schema_name
from klimapuls.gateway.intake import Checked, Issue, check_body
from klimapuls.producer import event_key
from klimapuls.producer.aio import AsyncEventProducer, Record
from klimapuls.settings import Settings
from klimapuls.storage.db import create_db_engine
from klimapuls.storage.grants import Credentials, GrantCache, TokenInfo
from klimapuls.storage.grants import load_credentials as _load_credentials

__all__ = [
    "DRAIN_RETRY_AFTER_S",
    "GATEWAY",
    "UNAVAILABLE_RETRY_AFTER_S",
    "check_rate",
    "create_app",
    "start_draining",
]

#: Retry-After of the answers while the stack stops (a restart takes this long).
DRAIN_RETRY_AFTER_S = 30
#: Retry-After when the broker or the database does not answer.
UNAVAILABLE_RETRY_AFTER_S = 5

log = logging.getLogger(__name__)

#: `rejected_by` of the dead letters the gateway sends.
GATEWAY = "gateway"
# A digest no secret has: unknown token ids cost the same comparison.
_NO_DIGEST = "0" * 64
_DEAD_LETTER_TIMEOUT_S = 2.0


@dataclass
class _Gateway:
    """What the endpoints share: settings, credentials, limiter, producer."""

    settings: Settings
    credentials: GrantCache[Credentials]
    producer: AsyncEventProducer
    limiter: MovingWindowRateLimiter
    rate: RateLimitItem
    #: Set when the stack stops (`start_draining`): every answer is then 503.
    draining: bool = False


def check_rate(settings: Settings) -> RateLimitItem:
    """The per-token rate of the settings, or a `ConfigurationError` naming it."""
    try:
        return parse(settings.gateway_rate_limit)
    except ValueError as exc:
        raise ConfigurationError(
            f"KLIMAPULS_GATEWAY_RATE_LIMIT={settings.gateway_rate_limit!r} is not a "
            "rate such as 20/second or 600 per minute"
        ) from exc


def _error(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status)


def _retry_later(status: int, error: str, detail: str, wait_s: int) -> JSONResponse:
    """An answer asking to send again in `wait_s` seconds (body and header)."""
    return JSONResponse(
        {"error": error, "detail": detail, "retry_after_s": wait_s},
        status_code=status,
        headers={"Retry-After": str(wait_s)},
    )


def _unavailable(exc: BaseException) -> JSONResponse:
    return _retry_later(
        503,
        "unavailable",
        f"{exc}; nothing is known to be stored: send the request "
        "again later (event ids make a repeat harmless)",
        UNAVAILABLE_RETRY_AFTER_S,
    )


def _draining() -> JSONResponse:
    return _retry_later(
        503,
        "draining",
        "the platform is stopping and processes what it has; "
        "nothing was sent: send again after it restarts",
        DRAIN_RETRY_AFTER_S,
    )


def start_draining(app: FastAPI) -> None:
    """From now on, answer every request 503 with Retry-After (the stack stops).

    `klimapuls up` asks for it (SIGUSR1) before it drains the topics, so no
    event is accepted that the drain might not wait for.
    """
    gateway: _Gateway = app.state.gateway
    if not gateway.draining:
        log.warning("the stack is stopping: answering 503 from now on")
    gateway.draining = True


def _unauthorised(detail: str) -> JSONResponse:
    return JSONResponse(
        {"error": "unauthorised", "detail": detail},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="klimapuls"'},
    )


def _authenticate(tokens: dict[str, TokenInfo] | Any, text: str) -> TokenInfo | None:
    presented = parse_token(text)
    if presented is None:
        return None
    info = tokens.get(presented.token_id)
    digest = info.secret_sha256 if info is not None else _NO_DIGEST
    if not secret_matches(presented.secret, digest) or info is None:
        return None
    return info


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> JSONResponse:
    return _error(
        413,
        "too_large",
        f"the body is larger than {limit:,} bytes; send smaller batches",
        limit_bytes=limit,
    )


def _records(settings: Settings, checked: Checked) -> list[Record]:
    topics = settings.topics
    return [
        Record(
            topics.for_kind(kind),
            event_key(kind, event),
            json.dumps(event, ensure_ascii=False).encode(),
        )
        for kind, event in checked.events
    ]


def _dead_letters(
    checked: Checked, issues: Sequence[Issue], token: TokenInfo, topic: str
) -> list[Record]:
    """One dead letter per refused event, each with all of its issues."""
    now = datetime.now(UTC)
    records: list[Record] = []
    for index, item in checked.refused.items():
        own = [FieldIssue(i.field, i.reason) for i in issues if i.index == index]
        if not own:
            continue
        payload = item if isinstance(item, bytes) else json.dumps(item).encode()
        kind = None
        if isinstance(item, dict) and isinstance(item.get("schema"), str):
            kind = item["schema"].split(".")[0]
        letter = DeadLetter.from_error(
            EventValidationError(own),
            kind=kind if kind in EVENT_KINDS else None,
            origin=f"{GATEWAY}:{token.token_id}:{'body' if index is None else index}",
            payload=payload,
            rejected_by=f"{GATEWAY} ({token.producer[:100]})",
            rejected_at=now,
        )
        records.append(Record(topic, letter.dead_letter_id.encode(), letter.to_json()))
    return records


async def _send_dead_letters(gateway: _Gateway, records: list[Record]) -> None:
    # The client has its answer either way; a broker away now only loses the
    # copy kept for the boards, so it is logged, not turned into a 503.
    try:
        await asyncio.wait_for(
            gateway.producer.send_all(records), _DEAD_LETTER_TIMEOUT_S
        )
    except (RetryableError, TimeoutError) as exc:
        log.warning("dead letters of a refused request not sent: %s", exc)


def _refused(status: int, error: str, detail: str, issues: list[Issue]) -> JSONResponse:
    return _error(status, error, detail, issues=[i.as_json() for i in issues])


def _request_body_schema() -> dict[str, Any]:
    event = {
        "oneOf": [
            {"$ref": f"#/components/schemas/{schema_name(kind)}"}
            for kind in EVENT_KINDS
        ]
    }
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [event, {"type": "array", "minItems": 1, "items": event}]
                }
            }
        },
    }


def _json_of(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


_ISSUES = {
    "description": "Refused: every issue, by event index, field path and reason.",
    "content": _json_of("Refused"),
}
_ERROR = {"content": _json_of("Error")}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: the broker acknowledged every event.",
        "content": _json_of("Accepted"),
    },
    401: {"description": "No token, or an unknown or revoked one.", **_ERROR},
    403: {**_ISSUES, "description": "An event writes a scope the token may not."},
    413: {"description": "The body is larger than the limit.", **_ERROR},
    422: _ISSUES,
    429: {
        "description": "Over the token's rate; see Retry-After.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        **_ERROR,
    },
    503: {
        "description": "Broker or database away, or the platform stopping: send "
        "again after Retry-After seconds.",
        **_ERROR,
    },
}


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for kind in EVENT_KINDS:
        name = schema_name(kind)
        body = {
            k: v for k, v in load_schema(name).items() if k not in ("$schema", "$id")
        }
        schemas[name] = body
    error: dict[str, Any] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    }
    issue = {
        "type": "object",
        "properties": {
            "index": {"type": ["integer", "null"]},
            "event_id": {"type": ["string", "null"]},
            "field": {"type": "string"},
            "reason": {"type": "string"},
        },
    }
    schemas["Error"] = error
    schemas["Refused"] = {
        **error,
        "properties": {
            **error["properties"],
            "issues": {"type": "array", "items": issue},
        },
    }
    schemas["Accepted"] = {
        "type": "object",
        "required": ["accepted", "event_ids"],
        "properties": {
            "accepted": {"type": "integer"},
            "event_ids": {"type": "array", "items": {"type": "string"}},
        },
    }
    return schemas


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The gateway app; settings (and optionally an engine) from the entry point."""
    rate = check_rate(settings)
    db = engine or create_db_engine(settings.require_database_url())
    settings.require_bootstrap_servers()
    gateway = _Gateway(
        settings=settings,
        credentials=GrantCache(db, _load_credentials, settings.gateway_refresh_seconds),
        producer=AsyncEventProducer(settings, settings.gateway_send_timeout_s),
        limiter=MovingWindowRateLimiter(MemoryStorage()),
        rate=rate,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await gateway.producer.stop()
        if engine is None:
            db.dispose()

    app = FastAPI(
        title="Klimapuls gateway",
        version="1",
        description=(
            "Producers (municipalities, the region, Movia, operators) send events "
            "with an API token. Each event names its family by `schema`; its "
            "`producer` is replaced by the token's producer."
        ),
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    _routes(app, gateway)
    _add_components(app)
    return app


def _add_components(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                _components()
            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_bearer = HTTPBearer(auto_error=False, description="An API token, `kpt_...`.")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _routes(app: FastAPI, gateway: _Gateway) -> None:
    limit = gateway.settings.gateway_max_body_bytes

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in the gateway")
        return _error(503, "unavailable", "unexpected gateway error; send again later")

    @app.get("/v1/health", responses={503: _RESPONSES[503]})
    async def health() -> JSONResponse:
        """Whether the gateway can reach the broker and its credentials."""
        if gateway.draining:
            return _draining()
        checks = {"broker": "ok", "credentials": "ok"}
        try:
            await gateway.producer.check()
        except RetryableError as exc:
            checks["broker"] = str(exc)
        try:
            await asyncio.to_thread(gateway.credentials.get)
        except RetryableError as exc:
            checks["credentials"] = str(exc)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **checks},
            status_code=200 if ok else 503,
        )

    @app.post(
        "/v1/events",
        status_code=202,
        responses=_RESPONSES,
        openapi_extra={"requestBody": _request_body_schema()},
    )
    async def post_events(request: Request, bearer: Bearer) -> JSONResponse:
        """Send one event or a batch; 202 once the broker has every one."""
        if gateway.draining:
            return _draining()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _too_large(limit)
        try:
            credentials = await asyncio.to_thread(gateway.credentials.get)
        except RetryableError as exc:
            return _unavailable(exc)
        if bearer is None:
            return _unauthorised("give an API token: Authorization: Bearer kpt_...")
        token = _authenticate(credentials.tokens, bearer.credentials)
        if token is None:
            return _unauthorised("unknown or revoked token")
        if not gateway.limiter.hit(gateway.rate, token.token_id):
            return _too_many(gateway, token)
        raw = await _read_body(request, limit)
        if raw is None:
            return _too_large(limit)
        return await _accept(gateway, raw, token, credentials)


def _too_many(gateway: _Gateway, token: TokenInfo) -> JSONResponse:
    stats = gateway.limiter.get_window_stats(gateway.rate, token.token_id)
    wait = max(1, math.ceil(stats.reset_time - time.time()))
    return _retry_later(
        429,
        "rate_limited",
        f"more than {gateway.settings.gateway_rate_limit} requests for "
        f"this token; send again in {wait} s",
        wait,
    )


async def _accept(
    gateway: _Gateway, raw: bytes, token: TokenInfo, credentials: Credentials
) -> JSONResponse:
    checked = check_body(raw, token.producer, credentials.grants)
    dead_letter = gateway.settings.topics.dead_letter
    if checked.invalid:
        await _send_dead_letters(
            gateway, _dead_letters(checked, checked.invalid, token, dead_letter)
        )
        return _refused(
            422, "invalid", "nothing was sent: fix every issue", checked.invalid
        )
    if checked.forbidden:
        await _send_dead_letters(
            gateway, _dead_letters(checked, checked.forbidden, token, dead_letter)
        )
        return _refused(
            403,
            "forbidden",
            f"nothing was sent: producer {token.producer!r} may not write these",
            checked.forbidden,
        )
    try:
        await gateway.producer.send_all(_records(gateway.settings, checked))
    except RetryableError as exc:
        return _unavailable(exc)
    ids = [event["event_id"] for _, event in checked.events]
    return JSONResponse({"accepted": len(ids), "event_ids": ids}, status_code=202)
