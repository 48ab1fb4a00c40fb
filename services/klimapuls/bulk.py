"""A plain Kafka batch worker for the topics that come in bursts.

faust hands a stream over event by event (an `Event`, a stream step and an
acknowledgement each): on two cores that path alone tops out near 10,000
events/s with a handler that does nothing, and its event loop competes with
the handler's thread for the interpreter; its batch window also holds a
batch back up to `KLIMAPULS_BATCH_SECONDS`. Counts are about 95 % of all
events, fleet snapshots come a register at a time, CO2 accounts a
restated series at a time, and dead letters with any burst of bad input,
so the co2, fleet, mobility and dead-letter services read with aiokafka's
`getmany` instead: a batch of records in one call, as soon as the broker
has one, handled by the same `BatchHandler`, published, and committed in
one step.

The contract is the faust loop's (`klimapuls.streaming`): an offset is
committed only after the batch's database commit and its publishing; both
are retried while the database or the broker is away; a bug stops the
worker (its supervisor restarts it, and the uncommitted batch comes again).
A commit refused because the group rebalanced is not an error: the batch's
partitions went to another worker, which reads the batch again, and storing
is idempotent.

The consumer group is the faust app's (`group_id`), so committed offsets
carry over; faust's and aiokafka's assignors cannot share one group, so
stop every old worker of a service before starting one of this kind.

Partitions come from the group (`KLIMAPULS_KAFKA_ASSIGNMENT=group`, for
replicas that come and go) or from a worker's place in its set (`static`,
what `klimapuls up` runs): joining a group takes the broker's rebalance
delay (3 s on Kafka's defaults and on the dev broker) before the first
record, a third of the time a 200,000-event backlog took to store. Worker
i of n reads every n-th partition from the i-th (`share_of`), and still
commits its offsets in the group, so a service switched between the two
goes on where it was. A set runs whole or is restarted whole
(`run_bulk_workers`), so no partition is left unread while its worker is
restarted for longer than the restart takes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
)

from klimapuls.batches import (
    BatchHandler,
    StageClock,
    group_id,
    publish_with_retries,
    with_retries,
)
from klimapuls.core.errors import ConfigurationError
from klimapuls.logs import quiet_client_repeats
from klimapuls.process import die_with

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from klimapuls.core.batch import BatchResult
    from klimapuls.settings import Settings

__all__ = [
    "BulkWorker",
    "more_waiting",
    "run_bulk_worker",
    "run_bulk_workers",
    "series_worker",
    "share_of",
]

log = logging.getLogger(__name__)

#: Every how many collections between batches and ticks is a full one.
_FULL_EVERY = 50

#: Bytes fetched per partition and request: a batch of counts is ~0.5 MB.
_FETCH_BYTES = 4 * 1024 * 1024


class BulkWorker:
    """Consume `kinds` in batches, as service `service`.

    The handler comes from `make_handler`, called in a thread while the
    consumer starts: loading the handler's modules and joining a group
    (the broker waits a few seconds for more members) overlap, which cuts
    a grouped worker's start by a second or two. With static assignment
    there is no join to wait for, and a set's workers may find the modules
    loaded before the fork (`run_bulk_workers`' `preload`).
    """

    def __init__(
        self,
        settings: Settings,
        service: str,
        kinds: Sequence[str],
        make_handler: Callable[[], BatchHandler],
    ) -> None:
        self.settings = settings
        self.service = service
        self.make_handler = make_handler
        self._handler: BatchHandler | None = None
        topics = settings.topics
        self.kind_of = {topics.for_kind(kind): kind for kind in kinds}
        self.stopping = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        #: Where the timers' time goes (the derives run beside the batches).
        self._derives = StageClock(f"{service}.derive")
        #: The timers' ticks under way (a stop lets them finish).
        self._ticks: set[asyncio.Future[None]] = set()
        #: Collections made between batches and ticks (`_collect`).
        self._collections = 0
        #: Which worker of its set this is, and of how many
        #: (`run_bulk_workers`): with static assignment, its share.
        self.member = (0, 1)

    @property
    def static(self) -> bool:
        """Whether partitions come from the worker's place in its set."""
        return self.settings.kafka_assignment == "static"

    def _consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        timing: dict[str, Any] = {}
        if s.kafka_session_timeout_s is not None:
            timing["session_timeout_ms"] = int(s.kafka_session_timeout_s * 1000)
        if s.kafka_heartbeat_s is not None:
            timing["heartbeat_interval_ms"] = int(s.kafka_heartbeat_s * 1000)
        return AIOKafkaConsumer(
            # Static: assigned once started (`_join`), no subscription.
            *(() if self.static else self.kind_of),
            **s.kafka.aiokafka_options(),
            group_id=group_id(s, self.service),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=_FETCH_BYTES,
            **timing,
        )

    async def run(self) -> None:
        """Consume until `stopping` is set (SIGTERM, Ctrl-C), then stop cleanly.

        A stop lets the batch in hand finish and derives the open window
        (`flush(force=True)`), all within `_STOP_GRACE_S` together (the
        broker or the database may be gone too, as when `klimapuls up` is
        killed): what is cut short is read again after the restart, since
        nothing uncommitted was committed. A timer that fails for good (a
        bug) stops the worker like a failing batch.
        """
        consumer = self._consumer()
        producer = self._producer = AIOKafkaProducer(
            **self.settings.kafka.aiokafka_options(), acks="all", linger_ms=5
        )
        making = asyncio.ensure_future(asyncio.to_thread(self._load))
        try:
            # Starting the producer waits for a broker's answer (aiokafka's
            # request timeout, 40 s, for one that accepts and stays silent);
            # joining returns once the group assigned partitions: seconds on
            # the dev broker, never while the broker is gone. A stop must
            # wait for neither (a worker whose parent died would live on).
            joined = await _unless_stopped(
                producer.start(), self.stopping
            ) and await _unless_stopped(self._join(consumer), self.stopping)
            if joined:
                self._handler = await making
        except BaseException:
            await _leave(consumer, producer, time.monotonic() + 3)
            raise
        if not joined:
            log.info("stopped while starting")
            await _leave(consumer, producer, time.monotonic() + 3)
            return
        # Collected between batches from here on (`_collect`); as it was
        # again when the worker stops (a worker may run inside another
        # program, such as a test).
        collecting = gc.isenabled()
        gc.disable()
        timers = [
            asyncio.create_task(self._every(name, seconds))
            for name, seconds in self._timers()
        ]
        consuming = asyncio.create_task(self._consume(consumer))
        stop = asyncio.create_task(self.stopping.wait())
        deadline = time.monotonic() + _STOP_GRACE_S
        try:
            await asyncio.wait(
                {consuming, stop, *timers}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in (consuming, *timers):
                if task.done():
                    task.result()  # a bug: raise it, the supervisor restarts us
            deadline = time.monotonic() + _STOP_GRACE_S
            # Timers first. A tick under way is not cut off: its derive runs
            # on in its thread whatever becomes of the task, and the window
            # it took is no longer pending for the forced flush below; so it
            # finishes and publishes what it derived.
            await _cancelled(timers)
            await _within(
                asyncio.gather(*self._ticks, return_exceptions=True),
                "the derive under way",
                deadline,
            )
            await _within(consuming, "the batch in hand", deadline)
            await _within(self._tick("flush", True), "the last derive", deadline)
        finally:
            stop.cancel()
            await _cancelled(timers)
            end = max(deadline, time.monotonic()) + 3
            await _leave(consumer, producer, end)
            if collecting:
                gc.enable()

    async def _join(self, consumer: AIOKafkaConsumer) -> None:
        """Start the consumer; with static assignment, take this worker's share."""
        await consumer.start()  # with a group: returns once it assigned
        if not self.static:
            return
        partitions = {}
        for topic in self.kind_of:
            found = consumer.partitions_for_topic(topic)
            if not found:
                raise ConfigurationError(
                    f"topic {topic} is not on the broker: create the topics "
                    "first (klimapuls topics create; klimapuls up does it)"
                )
            partitions[topic] = found
        index, count = self.member
        share = share_of(partitions, index, count)
        consumer.assign(share)
        log.info(
            "worker %d of %d reads %s",
            index + 1,
            count,
            ", ".join(f"{tp.topic}:{tp.partition}" for tp in share) or "nothing",
        )

    def _load(self) -> BatchHandler:
        """Make the handler; then freeze what is loaded, out of the collector's way.

        What exists once the handler is made (modules, the handler, its
        reference data) lives as long as the worker, yet every full
        collection scanned it: with batches of thousands of events, full
        collections took ~1.7 s of a mobility worker's ~5 s of CPU draining
        100,000 counts (0.2 s frozen). Runs in the thread that loads the
        handler, while the consumer joins its group. Once it is made, `run`
        has the worker collect between batches (`_collect`), not
        automatically.
        """
        handler = self.make_handler()
        gc.collect()
        gc.freeze()
        return handler

    def _collect(self) -> None:
        """Collect garbage now, between two batches or ticks, when little is alive.

        Automatic collection ran some sixty times a batch, each time through
        every object of the batch in hand (all alive until its end): 0.75 s
        of a mobility worker's 3.5 s of CPU draining 100,000 counts. A
        batch's objects are freed by reference counting when it ends, so a
        young collection here finds only the cycles it left; every
        `_FULL_EVERY`-th is a full one, for what lives longer. An idle
        worker collects after every empty poll (each `batch_seconds`).
        """
        self._collections += 1
        gc.collect(2 if self._collections % _FULL_EVERY == 0 else 1)

    @property
    def handler(self) -> BatchHandler:
        """The handler, once `run` made it."""
        if self._handler is None:  # run() makes it before any batch or timer
            raise RuntimeError("the worker is not running")
        return self._handler

    def _timers(self) -> list[tuple[str, float]]:
        found = []
        if hasattr(self.handler, "flush"):
            window = getattr(
                self.handler, "window_seconds", self.settings.derive_seconds
            )
            found.append(("flush", max(window, 0.1)))
        if hasattr(self.handler, "refresh"):
            found.append(("refresh", self.settings.refresh_seconds))
        return found

    async def _every(self, name: str, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            # Shielded: a stop cancels the timer, not its tick (see `run`).
            tick = asyncio.ensure_future(self._tick(name))
            self._ticks.add(tick)
            tick.add_done_callback(self._ticks.discard)
            await asyncio.shield(tick)

    async def _tick(self, name: str, force: bool = False) -> None:
        work = getattr(self.handler, name, None)
        if work is None:
            return
        call = partial(work, force=True) if force else work
        result = await with_retries(call, name)
        await publish_with_retries(self._publish, result, f"publishing the {name}")
        self._derives.add(result.stages)
        self._derives.batch(0)
        self._collect()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        # Loaded with the handler (see the class): not before the join.
        from klimapuls.core.batch import Incoming

        s = self.settings
        clock = StageClock(f"{self.service}.bulk")
        waited = time.monotonic()
        while not self.stopping.is_set():
            records = await consumer.getmany(
                timeout_ms=int(s.batch_seconds * 1000), max_records=s.batch_size
            )
            if not records:
                self._reading(behind=False)
                self._collect()  # idle: what the loop itself left, now and then
                continue
            began = time.monotonic()
            batch = [
                Incoming(
                    self.kind_of[tp.topic],
                    record.value or b"",
                    f"{tp.topic}:{tp.partition}:{record.offset}",
                )
                for tp, found in records.items()
                for record in found
            ]
            # More waiting (a backlog): a derive may wait too. No other task
            # runs since `getmany`: the partitions read are still assigned.
            marks = [
                (consumer.highwater(tp), await consumer.position(tp)) for tp in records
            ]
            self._reading(behind=more_waiting(len(batch), s.batch_size, marks))
            result = await with_retries(partial(self.handler.handle, batch), "batch")
            handled = time.monotonic()
            await publish_with_retries(self._publish, result, "publishing the batch")
            published = time.monotonic()
            await _commit(
                consumer, {tp: found[-1].offset + 1 for tp, found in records.items()}
            )
            committed = time.monotonic()
            clock.add(
                {
                    "wait": began - waited,
                    "handle": handled - began,
                    "publish": published - handled,
                    "ack": committed - published,
                }
            )
            clock.add(result.stages)
            clock.batch(len(batch))
            self._collect()
            waited = committed

    def _reading(self, behind: bool) -> None:
        """Tell a handler that paces its derives whether a backlog is read."""
        reading = getattr(self.handler, "reading", None)
        if reading is not None:
            reading(behind)

    async def _publish(self, result: BatchResult) -> None:
        """Dead letters and series changes: sent together, awaited together."""
        producer = self._producer
        if producer is None:  # run() starts it before any batch
            raise RuntimeError("the worker is not running")
        topics = self.settings.topics
        messages = [
            (topics.dead_letter, letter.dead_letter_id.encode(), letter.to_json())
            for letter in result.dead_letters
        ] + [
            (topics.series_change, change.producer.encode(), change.to_json())
            for change in result.series_changes
        ]
        pending = [
            await producer.send(topic, key=key, value=value)
            for topic, key, value in messages
        ]
        for sent in pending:
            await sent


class SeriesOwnerClass(Protocol):
    """A series owner's class (`klimapuls.deriving.SeriesOwner`), as called.

    A protocol, not that class: the import contracts keep the batch worker
    below the services' layer, so it may not import `deriving`, not even
    for types.
    """

    def __call__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        name: str | None = None,
        window_seconds: float = 0.0,
        backlog_seconds: float = 0.0,
    ) -> BatchHandler: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


def series_worker(
    settings: Settings, service: str, kind: str, owner: Callable[[], SeriesOwnerClass]
) -> BulkWorker:
    """The worker of a series owner's service (co2, fleet, mobility).

    `owner` imports and gives the handler's class: it is called in the
    thread that loads the handler while the consumer starts (and joins its
    group, with group assignment), so the database and domain code load
    meanwhile. A missing database URL is named at once, before any join.
    """
    settings.require_database_url()

    def make() -> BatchHandler:
        from klimapuls.storage.db import create_db_engine

        engine = create_db_engine(settings.require_database_url())
        return owner()(
            engine,
            _utc_now,
            service,
            settings.derive_seconds,
            backlog_seconds=settings.backlog_derive_seconds,
        )

    return BulkWorker(settings, service, (kind,), make)


#: How long a stop waits for the batch in hand and the last derive together
#: (`klimapuls up` sends SIGKILL after 20 s).
_STOP_GRACE_S = 12.0


async def _within(step: Awaitable[Any], what: str, deadline: float) -> None:
    """Await `step` until `deadline` (monotonic); past that, give it up."""
    try:
        await asyncio.wait_for(step, max(deadline - time.monotonic(), 0.1))
    except TimeoutError:
        log.warning("stopping: gave up on %s", what)


async def _leave(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, end: float
) -> None:
    """Stop both clients, giving up at `end` (monotonic; the broker may be gone)."""
    await _within(consumer.stop(), "leaving the group", end)
    await _within(producer.stop(), "stopping the producer", end)


async def _unless_stopped(step: Awaitable[Any], stopping: asyncio.Event) -> bool:
    """Await `step` unless `stopping` is set first (then cancel it): done?"""
    doing = asyncio.ensure_future(step)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({doing, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not doing.done():
        await _cancelled([doing])
        return False
    doing.result()
    return True


async def _cancelled(tasks: Sequence[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _commit(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
) -> None:
    """Commit after the batch; a rebalance in between only means a re-read."""
    delay = 0.5
    while True:
        try:
            await consumer.commit(offsets)
            return
        except (CommitFailedError, IllegalStateError) as exc:
            # The partitions moved on: their new owner reads the batch again.
            # (With static assignment it means a group member of the same
            # service runs beside this worker, which `klimapuls up` never
            # starts: the batch is stored, but its offsets are not committed.)
            log.warning("commit refused after a rebalance (%s); batch re-read", exc)
            return
        except KafkaError as exc:
            if not exc.retriable:
                raise  # e.g. not authorised: no retry mends it
            log.warning("commit failed, retrying in %.1fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


_LEVELS = {
    "crit": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def share_of(
    partitions: dict[str, Iterable[int]], index: int, count: int
) -> list[TopicPartition]:
    """Worker `index`'s partitions of `count`: every `count`-th, from the `index`-th.

    Over the topics' partitions in order, so a set of n workers reads every
    partition once, and each worker as many as any other, give or take one.
    """
    every = [
        TopicPartition(topic, partition)
        for topic in sorted(partitions)
        for partition in sorted(partitions[topic])
    ]
    return every[index::count]


def more_waiting(
    read: int, batch_size: int, marks: Iterable[tuple[int | None, int]]
) -> bool:
    """Whether a batch of `read` records came from a backlog: more is waiting.

    A full batch says so; a short one may too, in the middle of a backlog,
    when the records fetched ran out before the next fetch came: then a
    partition's high watermark (from its last fetch; None before one) lies
    past the consumer's position after the batch (past any transaction
    markers and compacted records too). `marks` holds the two for each
    partition read. Only derives are paced by this (`klimapuls.deriving`),
    never what is stored: a watermark read short would end a backlog early,
    as a short batch did, and one read too high would hold derives to the
    backlog window until an empty poll (neither was seen on Tansu, whose
    fetches report it right; only its ListOffsets reads short).
    """
    return read >= batch_size or any(
        high is not None and high > position for high, position in marks
    )


def _log_to_stdout(settings: Settings) -> None:
    logging.basicConfig(
        level=_LEVELS[settings.log_level],
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s",
    )
    quiet_client_repeats()


def run_bulk_worker(worker: BulkWorker) -> None:
    """Run `worker` until SIGTERM or Ctrl-C, then stop cleanly."""
    _log_to_stdout(worker.settings)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stopping.set)
        await worker.run()

    code = 0
    try:
        asyncio.run(main())
    except ConfigurationError as exc:  # the operator's to fix: one line
        log.error("batch worker cannot start: %s", exc)
        code = 1
    except KafkaConnectionError:
        # Not a bug, and the same after any traceback: the broker is away
        # (not started yet, restarting); the supervisor starts us again.
        log.error(
            "batch worker stopped: no Kafka broker answers at %s "
            "(KAFKA_BOOTSTRAP_SERVERS)",
            worker.settings.kafka.bootstrap_servers,
        )
        code = 1
    except Exception:
        log.exception("batch worker crashed; stopping")
        code = 1
    finally:
        # A handler thread still blocked in the database (given up on above)
        # would keep the interpreter waiting for it: leave without it. What
        # it had not committed is read again after the restart.
        logging.shutdown()
        os._exit(code)


def run_bulk_workers(
    make: Callable[[Settings], BulkWorker],
    settings: Settings,
    workers: int,
    preload: Callable[[], object] | None = None,
) -> None:
    """Run `workers` worker processes of one service, in its consumer group.

    One Python process uses one core; the group spreads the partitions over
    the workers (at most one worker per partition is busy). This process
    forks them before any connection exists, forwards SIGTERM and Ctrl-C,
    and waits. When one ends but for a stop, the others are stopped and
    this process exits with 1: the service's supervisor restarts the whole
    set, and what was not committed is read again. Each worker
    asks for SIGTERM when this process dies, so a `kill -9` of it leaves
    none behind. `preload` imports the handler's modules (and connects
    nowhere): called once before the forks, the workers share them instead
    of each importing them (~0.5 s of CPU apiece, while every service
    starts at once on the same cores).
    """
    if workers <= 1:
        run_bulk_worker(make(settings))
        return
    _log_to_stdout(settings)
    log.info("starting %d batch workers", workers)
    if preload is not None:
        preload()
    pids: list[int] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in pids:
            _signal(pid, signal.SIGTERM)

    # Before the first fork: a stop while the set starts must reach every
    # worker, not end this process alone (the default action) and leave
    # the workers to notice their parent is gone.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(workers):
        pids.append(_fork_worker(make, settings, (index, workers)))
    if stopping:  # asked during the forks: the later workers too
        stop(signal.SIGTERM, None)
    code = 0
    waiting = set(pids)
    while waiting:
        pid, status = os.wait()
        if pid not in waiting:
            continue
        waiting.discard(pid)
        exited = os.waitstatus_to_exitcode(status)
        if not stopping:
            # Even a clean exit: the set runs whole or is restarted whole.
            log.error("a batch worker ended (%s); stopping the others", exited)
            code = 1
            stop(signal.SIGTERM, None)
    os._exit(code)


_STOPS = {signal.SIGTERM, signal.SIGINT}


def _fork_worker(
    make: Callable[[Settings], BulkWorker], settings: Settings, member: tuple[int, int]
) -> int:
    parent = os.getpid()
    # A stop is held while forking: a new worker must not run the set's
    # handler (it would then outlive the stop meant for it). Once it has
    # the default handlers again, a stop held meanwhile ends it.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        die_with(parent)
        try:
            worker = make(settings)
            worker.member = member
            run_bulk_worker(worker)
        finally:
            os._exit(1)
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return pid


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # already gone
