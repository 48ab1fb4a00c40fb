"""Producers never hang when the broker goes away (issue 9, defect 5).

`klimapuls simulate` used to run on 60 s past its 20 s duration after the
broker died. Now it ends with one clear line and exit code 1, in bounded time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack import EmbeddedBroker, ensure_topics

#: Delivery timeout (20 s) + the send block bound (10 s) + start-up, generously.
BOUND_S = 60


def _wait_for_a_message(settings: Settings) -> None:
    consumer = KafkaConsumer(
        settings.topics.mobility_count,
        **settings.kafka.kafka_python_options(),
        group_id=None,
        auto_offset_reset="earliest",
        consumer_timeout_ms=60_000,
    )
    try:
        next(iter(consumer))
    finally:
        consumer.close()


@pytest.mark.timeout(180)
def test_simulate_fails_clearly_and_in_bounded_time_when_the_broker_dies(
    tmp_path: Path,
) -> None:
    broker = EmbeddedBroker(tmp_path / "tansu.log")
    servers = broker.start()
    try:
        settings = Settings(kafka=KafkaSettings(bootstrap_servers=servers))
        ensure_topics(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KLIMAPULS_")}
        env.pop("DATABASE_URL", None)
        env["KAFKA_BOOTSTRAP_SERVERS"] = servers
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "klimapuls",
                "simulate",
                "--rate",
                "300",
                "--duration",
                "120",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_a_message(settings)  # simulate is sending: mid-stream
        assert process.poll() is None, process.communicate()
        broker_pid = broker.pid
        assert broker_pid is not None
        os.kill(broker_pid, 9)
        killed = time.monotonic()
        try:
            out, err = process.communicate(timeout=BOUND_S)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError("simulate runs on after the broker died") from None
        took = time.monotonic() - killed
    finally:
        broker.stop()
    print(f"simulate ended {took:.1f} s after the broker was killed")
    output = out + err
    assert process.returncode == 1, output
    assert f"the Kafka broker at {servers}" in err
    assert "Traceback" not in output and "Error:" not in output
