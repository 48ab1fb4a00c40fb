"""Drain the topics before the embedded broker stops: nothing acknowledged is lost.

The embedded broker (Tansu, memory storage) forgets every message when it
stops. So on a user's stop, `klimapuls up` waits, within a bound, until
every consumer group has committed past everything that lies in its topics,
and only then stops the services and the broker.

End offsets cannot be trusted here (Tansu's ListOffsets "latest" answers
the first offset of the newest batch + 1). So the end of each partition is
found by reading: a plain consumer (no group) fetches what lies beyond the
lowest committed offset of the groups that read it, and the highest offset
it sees + 1 is the end. The drain is done when a fetch after the last look
at the committed offsets finds nothing new and every group has committed up
to that end. Services publish what a batch derives (dead letters, series
changes) before they acknowledge it, so those messages are in the topics by
the time the offset moves, and are read and waited for in the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from klimapuls.settings import Settings

__all__ = ["DrainReport", "drain_topics"]

log = logging.getLogger(__name__)

_POLL_MS = 300
_REPORT_EVERY_S = 2.0


@dataclass(frozen=True)
class DrainReport:
    """How a drain ended: events still unprocessed (0 when complete), seconds."""

    left: int
    seconds: float
    complete: bool
    left_by_group: Mapping[str, int]
    #: Events still unprocessed per topic (only topics with some left).
    left_by_topic: Mapping[str, int]


class _Reader:
    """Finds the true end of partitions by fetching (no consumer group)."""

    def __init__(self, settings: Settings, topics: Sequence[str]) -> None:
        options = settings.kafka.kafka_python_options()
        self.consumer = KafkaConsumer(
            **options,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=10_000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(self.partitions)
        self.end: dict[TopicPartition, int] = {}

    def start_at(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp in self.partitions:
            start = offsets.get(tp, 0)
            self.end[tp] = start
            self.consumer.seek(tp, start)

    def read_to_end(self, deadline: float) -> None:
        """Fetch until a fetch returns nothing new (or the deadline passes)."""
        while time.monotonic() < deadline:
            batches = self.consumer.poll(timeout_ms=_POLL_MS, max_records=50_000)
            if not batches:
                return
            for tp, records in batches.items():
                if records:
                    self.end[tp] = max(self.end.get(tp, 0), records[-1].offset + 1)

    def close(self) -> None:
        self.consumer.close()


def _committed(
    admin: KafkaAdminClient, groups: Sequence[str]
) -> dict[str, dict[TopicPartition, int]]:
    answer = admin.list_group_offsets({group: None for group in groups})
    return {
        group: {tp: meta.offset for tp, meta in (answer.get(group) or {}).items()}
        for group in groups
    }


def _left(
    reader: _Reader,
    consumes: Mapping[str, Sequence[str]],
    committed: Mapping[str, Mapping[TopicPartition, int]],
) -> tuple[dict[str, int], dict[str, int]]:
    """Events not yet processed, by group and by topic (topics with some left)."""
    by_group: dict[str, int] = {}
    by_topic: dict[str, int] = {}
    for group, topics in consumes.items():
        done = committed.get(group, {})
        by_group[group] = 0
        for tp, end in reader.end.items():
            if tp.topic not in topics:
                continue
            behind = max(0, end - max(done.get(tp, 0), 0))
            by_group[group] += behind
            if behind:
                by_topic[tp.topic] = by_topic.get(tp.topic, 0) + behind
    return by_group, by_topic


def drain_topics(
    settings: Settings,
    consumes: Mapping[str, Sequence[str]],
    timeout_s: float,
    on_progress: Callable[[Mapping[str, int], float], None] | None = None,
) -> DrainReport:
    """Wait until every group in `consumes` (group id -> topics) is caught up.

    `on_progress(left_by_topic, elapsed_s)` is called at the first look that
    finds events left, then every couple of seconds.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    topics = sorted(
        {topic for group_topics in consumes.values() for topic in group_topics}
    )
    admin = KafkaAdminClient(
        **settings.kafka.kafka_python_options(), request_timeout_ms=10_000
    )
    reader = _Reader(settings, topics)
    left: dict[str, int] = {group: 0 for group in consumes}
    by_topic: dict[str, int] = {}
    try:
        committed = _committed(admin, list(consumes))
        lowest: dict[TopicPartition, int] = {}
        for group, topics_of_group in consumes.items():
            for tp in reader.partitions:
                if tp.topic in topics_of_group:
                    offset = max(committed[group].get(tp, 0), 0)
                    lowest[tp] = min(lowest.get(tp, offset), offset)
        reader.start_at(lowest)
        reported = started - _REPORT_EVERY_S
        while True:
            committed = _committed(admin, list(consumes))
            reader.read_to_end(deadline)
            left, by_topic = _left(reader, consumes, committed)
            now = time.monotonic()
            if sum(left.values()) == 0:
                return DrainReport(0, now - started, True, left, {})
            if now >= deadline:
                break
            if on_progress is not None and now - reported >= _REPORT_EVERY_S:
                on_progress(by_topic, now - started)
                reported = now
            time.sleep(0.5)
    except KafkaError as exc:
        log.warning("drain stopped early, the broker answers no more: %s", exc)
    finally:
        reader.close()
        admin.close()
    return DrainReport(
        sum(left.values()), time.monotonic() - started, False, left, by_topic
    )
