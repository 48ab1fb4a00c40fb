"""The thin faust layer every service shares: app factory and batch loop.

Kafka only: no database or domain code here. The loop takes a batch, runs
the (blocking, database-bound) handler in a thread, publishes what the
handler returns (dead letters, series changes, and whatever the service's
own publisher sends), and only then acknowledges the events, so faust
commits an offset only after the database commit. A `RetryableError`
(database down) retries the same batch with back-off, and a failure while
publishing retries the publishing; nothing is acknowledged meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import faust
from faust.streams import Stream
from faust.types import EventT, StreamT

from klimapuls.batches import (
    BatchHandler,
    StageClock,
    group_id,
    publish_with_retries,
    with_retries,
)
from klimapuls.core.batch import BatchResult, Incoming
from klimapuls.logs import quiet_client_repeats
from klimapuls.settings import Settings

__all__ = [
    "BatchHandler",
    "Publisher",
    "StageClock",
    "consume_batches",
    "deliver",
    "deliver_all",
    "group_id",
    "make_app",
    "origin_of",
    "publish_with_retries",
    "raw_topic",
    "run_worker",
    "service_app",
    "with_retries",
]

log = logging.getLogger(__name__)
R = TypeVar("R")


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
    app_id = group_id(settings, service)
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


async def deliver_all(
    messages: Sequence[tuple[faust.TopicT, bytes | None, bytes]],
) -> None:
    """Send all, then wait until the broker has every one (order per topic kept)."""
    pending = [await topic.send(key=key, value=value) for topic, key, value in messages]
    for sent in pending:
        await sent


async def consume_batches(
    stream: StreamT[Any],
    settings: Settings,
    handle: Callable[[Sequence[EventT[Any]]], R],
    after: Callable[[R], Awaitable[None]] | None = None,
    name: str = "worker",
) -> None:
    """Run `handle` on batches; ack each batch only after `handle` and `after`.

    Both steps are retried while the database or the broker is away. An
    unexpected error (a bug, not bad input) stops the whole worker: a
    half-alive service that consumes nothing is worse than a visible crash,
    and the unacknowledged batch is redelivered after the restart.
    """
    try:
        await _consume(stream, settings, handle, after, name)
    except Exception as exc:
        log.exception("batch loop crashed; stopping the worker")
        await stream.app.crash(exc)
        raise


async def _consume(
    stream: StreamT[Any],
    settings: Settings,
    handle: Callable[[Sequence[EventT[Any]]], R],
    after: Callable[[R], Awaitable[None]] | None,
    name: str,
) -> None:
    # noack_take is on faust's Stream, not on the StreamT protocol.
    taking = cast("Stream[Any]", stream).noack_take(
        settings.batch_size, within=settings.batch_seconds
    )
    clock = StageClock(name)
    waited = time.monotonic()
    async for events in taking:
        began = time.monotonic()
        batch: list[EventT[Any]] = list(events)
        result = await with_retries(partial(handle, batch), "batch")
        handled = time.monotonic()
        if after is not None:
            await publish_with_retries(after, result, "publishing the batch")
        published = time.monotonic()
        for event in batch:
            await stream.ack(event)
        acked = time.monotonic()
        clock.add(
            {
                "wait": began - waited,
                "handle": handled - began,
                "publish": published - handled,
                "ack": acked - published,
            }
        )
        clock.add(getattr(result, "stages", {}))
        clock.batch(len(batch))
        waited = acked


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic of raw bytes: services decode and validate bodies themselves."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )


class _Worker(faust.Worker):
    """faust's worker, leaving the process title alone, its log quieter.

    faust retitles its process (`[Faust:Worker] -init- ...`) when
    setproctitle is installed; the title stays `python -m klimapuls.NAME`,
    which `klimapuls up` looks for to stop a service an earlier `up` left.
    """

    def _setproctitle(self, info: str, *, ident: str = "") -> None:
        return None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """Hold the Kafka client's repeats back once faust's handlers are set."""
        super().on_setup_root_logger(logger, level)
        quiet_client_repeats(logger)

    async def stop(self) -> None:
        """Stop the app; exit anyway if that takes over `_STOP_SECONDS`.

        Only the app's stop is timed, not faust's closing of the event loop
        after it (a second or so of gathering futures, whatever came before).
        """
        timer = threading.Timer(_STOP_SECONDS, _exit_unstopped)
        timer.daemon = True
        timer.start()
        threading.excepthook = partial(
            _thread_cancelled_while_stopping, threading.excepthook
        )
        try:
            await super().stop()
        finally:
            timer.cancel()


#: How long a stopping service may take before it exits anyway, under the
#: 10 s compose gives (and `klimapuls up`'s 20 s) before a SIGKILL. faust's
#: consumer never finishes stopping while its broker is away: its thread
#: ends on a CancelledError and the worker waits for it until killed.
_STOP_SECONDS = 8.0


def _thread_cancelled_while_stopping(
    previous: Callable[[threading.ExceptHookArgs], Any],
    args: threading.ExceptHookArgs,
) -> None:
    """One line for a thread cancelled by the stop; the rest to `previous`.

    faust's consumer thread, stopped while its broker is away, ends on the
    CancelledError of a fetch it was retrying: expected, not a traceback.
    """
    if args.exc_type is asyncio.CancelledError:
        name = args.thread.name if args.thread is not None else "a thread"
        log.warning("thread %s ended on a cancelled request while stopping", name)
        return
    previous(args)


def _exit_unstopped() -> None:
    """End a process whose stop hangs: nothing is lost by it.

    Every batch is stored before it is acknowledged, and stored by event
    identity: what was stored but not yet committed is read again at the
    next start and changes nothing.
    """
    log.error(
        "stopping took over %g s (a batch still being stored, or the broker "
        "away): exiting now; events not yet acknowledged are read again at "
        "the next start",
        _STOP_SECONDS,
    )
    logging.shutdown()
    os._exit(1)


def run_worker(app: faust.App, settings: Settings) -> None:
    """Run `app` (built from `settings`) until SIGTERM or Ctrl-C, then stop."""
    # Not redirected: a library's traceback on stderr stays one block in the
    # log, not a WARNING record per fragment of each line.
    worker = _Worker(
        app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False
    )
    worker.execute_from_commandline()


Publisher = Callable[[BatchResult], Awaitable[None]]


def service_app(
    settings: Settings,
    service: str,
    kinds: Sequence[str],
    handler: BatchHandler,
    *,
    publisher: Callable[[faust.App], Publisher] | None = None,
) -> faust.App:
    """A service's faust app: one agent per topic, one handler for all.

    After each batch commits, its dead letters go to the dead-letter topic,
    its series changes to `series-change`, and the service's own publisher
    (`publisher(app)`, if given) does the rest, all before the batch is
    acknowledged. A handler with a `refresh()`
    method gets a timer (`KLIMAPULS_REFRESH_SECONDS`) whose result is
    published the same way, and one with a `flush()` method (deriving what
    its batches left pending) a timer every `window_seconds` of the handler.
    """
    app = make_app(settings, service)
    topics = settings.topics
    dead_letter = raw_topic(app, topics.dead_letter)
    series_change = raw_topic(app, topics.series_change)
    publish = publisher(app) if publisher is not None else None

    async def after(result: BatchResult) -> None:
        # Sent together, then awaited together: one broker round trip, not
        # one per dead letter.
        await deliver_all(
            [
                (dead_letter, letter.dead_letter_id.encode(), letter.to_json())
                for letter in result.dead_letters
            ]
            + [
                (series_change, change.producer.encode(), change.to_json())
                for change in result.series_changes
            ]
        )
        if publish is not None:
            await publish(result)

    def agent_for(kind: str) -> None:
        def handle(events: Sequence[EventT[Any]]) -> BatchResult:
            return handler.handle(
                [Incoming(kind, bytes(e.value), origin_of(e)) for e in events]
            )

        async def agent(stream: StreamT[Any]) -> None:
            await consume_batches(stream, settings, handle, after, f"{service}.{kind}")

        app.agent(raw_topic(app, topics.for_kind(kind)), name=f"{service}.{kind}")(
            agent
        )

    for kind in kinds:
        agent_for(kind)

    flush = getattr(handler, "flush", None)
    if flush is not None:
        # A handler that derives once per window (its `window_seconds`)
        # derives here, beside its batches, not in their way.
        window = getattr(handler, "window_seconds", settings.derive_seconds)
        derives = StageClock(f"{service}.derive")

        @app.timer(interval=max(window, 0.1))
        async def flush_derived() -> None:
            result = await with_retries(flush, "derive")
            await publish_with_retries(after, result, "publishing the derive")
            derives.add(result.stages)
            derives.batch(0)

    refresh = getattr(handler, "refresh", None)
    if refresh is not None:
        # Derived rows also change with time alone (a figure turns stale, a
        # deadline year passes): recompute now and then, not only on events.
        @app.timer(interval=settings.refresh_seconds)
        async def refresh_derived() -> None:
            result = await with_retries(refresh, "refresh")
            await publish_with_retries(after, result, "publishing the refresh")

    return app
