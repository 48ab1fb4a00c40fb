"""What both batch loops share: the faust one and the plain one.

The faust loop is `klimapuls.streaming`, the plain one `klimapuls.bulk`.
The handler protocol, retries while the database or the broker is away,
the stage clock, the consumer group's name. No faust here: the bulk worker
imports this before it joins its group, and faust alone takes a noticeable
part of a second to import on a busy machine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from aiokafka.errors import KafkaError

from klimapuls.core.errors import RetryableError

if TYPE_CHECKING:
    from klimapuls.core.batch import BatchResult, Incoming
    from klimapuls.settings import Settings

__all__ = [
    "STAGE_LOG_SECONDS",
    "BatchHandler",
    "StageClock",
    "group_id",
    "publish_with_retries",
    "with_retries",
]

log = logging.getLogger(__name__)
R = TypeVar("R")

_MAX_BACKOFF_S = 30.0


def group_id(settings: Settings, service: str) -> str:
    """The consumer group (and faust app id) of `service`."""
    return f"{settings.group_prefix}-{settings.topic_prefix}{service}"


class BatchHandler(Protocol):
    """A service's batch logic: validate, store, derive; no Kafka."""

    def handle(self, batch: Sequence[Incoming]) -> BatchResult:
        """Handle one batch in one database transaction."""
        ...


def _retryable(exc: BaseException) -> bool:
    # The database away (our RetryableError) or the broker slow or away.
    return isinstance(exc, RetryableError | KafkaError | asyncio.TimeoutError)


async def with_retries(work: Callable[[], R], what: str) -> R:
    """Run blocking `work` in a thread until it succeeds or fails for good."""
    delay = 0.5
    while True:
        try:
            return await asyncio.to_thread(work)
        except RetryableError as exc:
            log.warning("%s failed, retrying in %.1fs: %s", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)


async def publish_with_retries(
    publish: Callable[[R], Awaitable[None]], result: R, what: str
) -> None:
    """Publish a committed batch's outbound messages until it succeeds.

    Runs after the database commit and before the acknowledgement, so a
    failure here must neither crash the worker nor skip the messages:
    publishing again is harmless (dead letters and status changes are keyed,
    series changes are notices).
    """
    delay = 0.5
    while True:
        try:
            await publish(result)
            return
        except Exception as exc:
            if not _retryable(exc):
                raise
            log.warning("%s failed, retrying in %.1fs: %s", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)


#: How often a worker logs where its time went (a `stages` line).
STAGE_LOG_SECONDS = 10.0


class StageClock:
    """Where a worker's time goes: summed per stage, logged now and then.

    One line per `every` seconds with events, for operators and for the
    benchmark, which reads them from the service logs:
    `stages NAME: N events, B batches, S s: wait=.. handle=.. publish=.. ack=..`
    plus the handler's own stages (decode, store, derive) inside `handle`.
    """

    def __init__(self, name: str, every: float = STAGE_LOG_SECONDS) -> None:
        self.name = name
        self.every = every
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self.since = now
        self.events = 0
        self.batches = 0
        self.seconds: Counter[str] = Counter()

    def add(self, stages: Mapping[str, float]) -> None:
        """Add seconds per stage."""
        self.seconds.update(stages)

    def batch(self, events: int) -> None:
        """Count a finished batch; log the sums once `every` seconds passed."""
        self.events += events
        self.batches += 1
        now = time.monotonic()
        if now - self.since >= self.every:
            log.info("%s", self.line(now))
            self._reset(now)

    def line(self, now: float) -> str:
        """The log line of the sums so far."""
        parts = " ".join(f"{k}={v:.2f}" for k, v in sorted(self.seconds.items()))
        return (
            f"stages {self.name}: {self.events} events, {self.batches} batches, "
            f"{now - self.since:.1f} s: {parts}"
        )
