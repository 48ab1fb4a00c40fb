"""An asyncio producer (aiokafka) that reports when the broker has every record.

The gateway answers 202 only after `send_all` returns, so an accepted event
is on the broker (acks from all in-sync replicas). Every failure to reach
the broker (not started, away, too slow) is a `RetryableError` with a clear
message, never a raw client error. Connection settings, TLS and SASL
included, are the services' (`KafkaSettings.aiokafka_options`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from klimapuls.core.errors import RetryableError
from klimapuls.settings import Settings

__all__ = ["AsyncEventProducer", "Record"]

log = logging.getLogger(__name__)

# A connect or metadata round trip longer than this counts as "away".
_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Record:
    """One message to send: topic, key and body."""

    topic: str
    key: bytes | None
    value: bytes


class AsyncEventProducer:
    """Starts on first use, and again after a failed start (broker was away)."""

    def __init__(self, settings: Settings, send_timeout_s: float) -> None:
        self.settings = settings
        self.send_timeout_s = send_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    def _new_producer(self) -> AIOKafkaProducer:
        timeout_ms = int(self.send_timeout_s * 1000)
        return AIOKafkaProducer(
            **self.settings.kafka.aiokafka_options(),
            acks="all",
            request_timeout_ms=timeout_ms,
            retry_backoff_ms=200,
            linger_ms=2,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
        )

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = self._new_producer()
            try:
                await asyncio.wait_for(producer.start(), _CONNECT_TIMEOUT_S)
            except (KafkaError, OSError, TimeoutError) as exc:
                await _quietly_stop(producer)
                raise RetryableError(f"Kafka broker unavailable: {_say(exc)}") from exc
            self._producer = producer
            return producer

    async def send_all(self, records: Sequence[Record]) -> None:
        """Send every record; return once the broker acknowledged all of them."""
        producer = await self._started()

        async def send() -> None:
            pending = [
                await producer.send(r.topic, r.value, key=r.key) for r in records
            ]
            await asyncio.gather(*pending)

        try:
            await asyncio.wait_for(send(), self.send_timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise RetryableError(
                f"Kafka broker did not acknowledge the events: {_say(exc)}"
            ) from exc

    async def check(self) -> None:
        """Raise `RetryableError` unless the broker answers a metadata request."""
        producer = await self._started()
        try:
            await asyncio.wait_for(
                producer.client.fetch_all_metadata(), _CONNECT_TIMEOUT_S
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            raise RetryableError(f"Kafka broker unavailable: {_say(exc)}") from exc

    async def stop(self) -> None:
        """Flush what is pending (bounded) and close the connection."""
        async with self._lock:
            if self._producer is not None:
                await _quietly_stop(self._producer)
                self._producer = None


def _say(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), _CONNECT_TIMEOUT_S)
    except (KafkaError, OSError, TimeoutError) as exc:
        # Closing a producer whose broker is away: nothing left to save.
        log.warning("Kafka producer did not close cleanly: %s", _say(exc))
