"""`klimapuls simulate` against the real broker: every family arrives, paced."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from kafka import KafkaConsumer, TopicPartition
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.core.validation import EVENT_KINDS
from klimapuls.settings import Settings
from klimapuls.stack import EmbeddedBroker


def _read_all(settings: Settings, expected: int, timeout_s: float = 30.0) -> dict:
    """Every message on the five event topics, by kind (bodies as bytes)."""
    consumer = KafkaConsumer(
        **settings.kafka.kafka_python_options(),
        group_id=None,
        enable_auto_commit=False,
    )
    try:
        topics = {settings.topics.for_kind(kind): kind for kind in EVENT_KINDS}
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        bodies: dict[str, list[bytes]] = {kind: [] for kind in EVENT_KINDS}
        deadline = time.monotonic() + timeout_s
        while sum(map(len, bodies.values())) < expected:
            assert time.monotonic() < deadline, {k: len(v) for k, v in bodies.items()}
            for tp, records in consumer.poll(timeout_ms=500).items():
                bodies[topics[tp.topic]].extend(r.value for r in records)
        return bodies
    finally:
        consumer.close()


def _malformed(kind: str, body: bytes) -> bool:
    try:
        event = json.loads(body)
    except ValueError:
        return True
    from klimapuls.core.errors import EventValidationError
    from klimapuls.core.validation import validate_event

    try:
        validate_event(kind, event)
    except EventValidationError:
        return True
    return False


def test_simulate_streams_every_family_at_the_rate_and_prints_a_summary(
    settings: Settings, broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    monkeypatch.setenv("KLIMAPULS_TOPIC_PREFIX", settings.topic_prefix)

    started = time.monotonic()
    result = CliRunner().invoke(app, ["simulate", "--rate", "500", "--duration", "2"])
    elapsed = time.monotonic() - started

    assert result.exit_code == 0, result.output
    summary = re.search(r"sent (\d+) events \((\d+) malformed", result.output)
    assert summary, result.output
    sent, malformed = int(summary[1]), int(summary[2])
    # The rate is a ceiling, never exceeded; how close a loaded CI machine
    # gets to it is a benchmark question, not a test's.
    assert 0 < sent <= 1000
    assert elapsed < 15  # it stops by itself
    assert "events/s" in result.output and "synthetic" in result.output
    for kind in EVENT_KINDS:
        assert kind in result.output

    bodies = _read_all(settings, sent)
    assert sum(map(len, bodies.values())) == sent
    assert all(bodies[kind] for kind in EVENT_KINDS), {
        k: len(v) for k, v in bodies.items()
    }
    rejected = Counter(
        kind for kind, values in bodies.items() for b in values if _malformed(kind, b)
    )
    assert sum(rejected.values()) == malformed > 0
    for kind in ("mobility_count", "fleet_status", "initiative_status"):
        producers = {
            json.loads(b)["producer"] for b in bodies[kind] if not _malformed(kind, b)
        }
        assert producers == {"klimapuls-simulator (synthetic)"}


def test_a_sigterm_ends_simulate_as_a_ctrl_c_does_with_nothing_lost(
    settings: Settings, broker: EmbeddedBroker
):
    """A supervisor's stop (or `timeout`'s): what was sent is flushed and summed."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KLIMAPULS_TOPIC_PREFIX": settings.topic_prefix,
    }
    command = subprocess.Popen(
        [sys.executable, "-m", "klimapuls", "simulate", "--rate", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    time.sleep(4)  # loaded, connected, sending
    command.send_signal(signal.SIGTERM)
    output, _ = command.communicate(timeout=60)

    assert command.returncode == 0, output
    assert "Traceback" not in output
    summary = re.search(r"sent (\d+) events", output)
    assert summary and "interrupted" in output, output
    sent = int(summary[1])
    assert sent > 0
    bodies = _read_all(settings, sent)
    assert sum(map(len, bodies.values())) == sent  # lost 0, doubled 0
