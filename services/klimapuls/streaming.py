"""The thin faust layer every service shares: app factory and batch loop.

The loop takes a batch, runs the (blocking, database-bound) handler in a
thread, publishes what the handler returns (dead letters, status changes),
and only then acknowledges the events, so faust commits an offset only
after the database commit. A `RetryableError` (database down) retries the
same batch with back-off; nothing is acknowledged meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar, cast

import faust
from faust.streams import Stream
from faust.types import EventT, StreamT
from sqlalchemy import Connection, Engine

from klimapuls.core.batch import BatchResult, Incoming
from klimapuls.core.errors import RetryableError
from klimapuls.core.settings import Settings
from klimapuls.storage import repository
from klimapuls.storage.db import create_db_engine

__all__ = [
    "consume_batches",
    "deliver",
    "make_app",
    "origin_of",
    "publish_status_changes",
    "raw_topic",
    "run_worker",
]

log = logging.getLogger(__name__)
R = TypeVar("R")

_MAX_BACKOFF_S = 30.0


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    context = None
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def make_app(settings: Settings, service: str) -> faust.App:
    """A faust app for `service`, with its own consumer group.

    Stock client defaults apply unless the settings carry the dev-broker
    timings (`KLIMAPULS_KAFKA_SESSION_TIMEOUT_S`, `..._HEARTBEAT_S`).
    """
    options: dict[str, Any] = {}
    if settings.kafka_session_timeout_s is not None:
        options["broker_session_timeout"] = settings.kafka_session_timeout_s
    if settings.kafka_heartbeat_s is not None:
        options["broker_heartbeat_interval"] = settings.kafka_heartbeat_s
    credentials = _credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    app_id = f"{settings.group_prefix}-{settings.topic_prefix}{service}"
    datadir = settings.data_dir / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=[
            f"kafka://{server}"
            for server in settings.require_bootstrap_servers().split(",")
        ],
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        # Faust's own tables are not used: durable state lives in PostgreSQL.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        **options,
    )


def origin_of(event: EventT[Any]) -> str:
    """Where a message came from: `topic:partition:offset`."""
    message = event.message
    return f"{message.topic}:{message.partition}:{message.offset}"


async def deliver(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
    """Send and wait until the broker has it (so acking after is safe)."""
    pending = await topic.send(key=key, value=value)
    await pending


async def _with_retries(work: Callable[[], R], what: str) -> R:
    delay = 0.5
    while True:
        try:
            return await asyncio.to_thread(work)
        except RetryableError as exc:
            log.warning("%s failed, retrying in %.1fs: %s", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)


async def consume_batches(
    stream: StreamT[Any],
    settings: Settings,
    handle: Callable[[Sequence[EventT[Any]]], R],
    after: Callable[[R], Awaitable[None]] | None = None,
) -> None:
    """Run `handle` on batches; ack each batch only after `handle` and `after`.

    An unexpected error (a bug, not bad input) stops the whole worker: a
    half-alive service that consumes nothing is worse than a visible crash,
    and the unacknowledged batch is redelivered after the restart.
    """
    try:
        await _consume(stream, settings, handle, after)
    except Exception as exc:
        log.exception("batch loop crashed; stopping the worker")
        await stream.app.crash(exc)
        raise


async def _consume(
    stream: StreamT[Any],
    settings: Settings,
    handle: Callable[[Sequence[EventT[Any]]], R],
    after: Callable[[R], Awaitable[None]] | None,
) -> None:
    # noack_take is on faust's Stream, not on the StreamT protocol.
    taking = cast("Stream[Any]", stream).noack_take(
        settings.batch_size, within=settings.batch_seconds
    )
    async for events in taking:
        batch: list[EventT[Any]] = list(events)
        result = await _with_retries(partial(handle, batch), "batch")
        if after is not None:
            await after(result)
        for event in batch:
            await stream.ack(event)


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic of raw bytes: services decode and validate bodies themselves."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


def run_worker(app: faust.App) -> None:
    """Run `app` until SIGTERM or Ctrl-C, then stop cleanly."""
    worker = faust.Worker(app, loglevel=Settings().log_level, quiet=True)
    worker.execute_from_commandline()


async def publish_status_changes(engine: Engine, topic: faust.TopicT) -> None:
    """Send target status changes from the outbox table, then mark them sent.

    Any service that writes progress calls this after its batch commits. One
    transaction holds the outbox lock while it sends and marks, so concurrent
    publishers (agents, services, replicas) neither send a change twice nor
    out of order; if a send fails, nothing is marked and the next call
    retries. Only a crash between the broker's ack and the commit sends a
    change twice; consumers key on `id`.
    """
    loop = asyncio.get_running_loop()

    def send(change: dict[str, Any]) -> None:
        body = json.dumps(change).encode()
        sending = deliver(topic, change["target_id"].encode(), body)
        asyncio.run_coroutine_threadsafe(sending, loop).result(timeout=60)

    def work(conn: Connection) -> None:
        repository.lock_outbox(conn)
        changes = repository.unpublished_status_changes(conn)
        for change in changes:
            send(change)
        repository.mark_published(conn, [c["id"] for c in changes], datetime.now(UTC))

    await asyncio.to_thread(repository.in_transaction, engine, work)


class BatchHandler(Protocol):
    """A service's batch logic: validate, store, derive; no Kafka."""

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Handle one batch in one database transaction."""
        ...


def service_app(
    settings: Settings,
    service: str,
    kinds: Sequence[str],
    make_handler: Callable[[Engine], BatchHandler],
    *,
    publishes_status: bool = True,
) -> faust.App:
    """A service's faust app: one agent per event family, one handler for all.

    Each batch's dead letters go to the dead-letter topic and, when the
    service writes target progress (`publishes_status`), the outbox of status
    changes to `target-status`, before the batch is acknowledged.
    """
    app = make_app(settings, service)
    engine = create_db_engine(settings.require_database_url())
    handler = make_handler(engine)
    topics = settings.topics
    dead_letter = raw_topic(app, topics.dead_letter)
    target_status = raw_topic(app, topics.target_status)

    async def after(result: BatchResult) -> None:
        for letter in result.dead_letters:
            await deliver(dead_letter, letter.dead_letter_id.encode(), letter.to_json())
        if publishes_status:
            await publish_status_changes(engine, target_status)

    def agent_for(kind: str) -> None:
        def handle(events: Sequence[EventT[Any]]) -> BatchResult:
            return handler.handle(
                [Incoming(kind, bytes(e.value), origin_of(e)) for e in events]
            )

        async def agent(stream: StreamT[Any]) -> None:
            await consume_batches(stream, settings, handle, after)

        app.agent(raw_topic(app, topics.for_kind(kind)), name=f"{service}.{kind}")(
            agent
        )

    for kind in kinds:
        agent_for(kind)

    refresh = getattr(handler, "refresh", None)
    if refresh is not None:
        # Statuses also change with time alone (a figure turns stale, a
        # deadline year passes): recompute now and then, not only on events.
        @app.timer(interval=settings.refresh_seconds)
        async def refresh_progress() -> None:
            await after(await _with_retries(refresh, "refresh"))

    return app
