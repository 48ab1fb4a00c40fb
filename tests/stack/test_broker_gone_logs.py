"""A batch service whose broker goes away logs the client's errors sparingly.

While a broker is away aiokafka logs the same error at every reconnect,
some forty times a second per worker: a log file filled up in an outage.
Given a co2 service on a broker of its own, when that broker is killed,
each kind of client message appears about once per ten seconds, and the
service keeps running (its supervisor need not restart it: the broker may
come back).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from klimapuls.bulk import ClientRepeats
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack import EmbeddedBroker, ensure_topics


@pytest.mark.timeout(120)
def test_a_killed_broker_does_not_flood_the_log(
    settings: Settings, tmp_path: Path
) -> None:
    broker = EmbeddedBroker(tmp_path / "tansu.log")
    broker.start()
    try:
        own = settings.model_copy(
            update={"kafka": KafkaSettings(bootstrap_servers=broker.bootstrap_servers)}
        )
        ensure_topics(own)
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("KAFKA_", "KLIMAPULS_")) and name != "DATABASE_URL"
        }
        env.update(
            {
                "DATABASE_URL": own.require_database_url(),
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "KLIMAPULS_TOPIC_PREFIX": own.topic_prefix,
                "KLIMAPULS_GROUP_PREFIX": own.group_prefix,
                "KLIMAPULS_KAFKA_ASSIGNMENT": "static",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "services"),
            }
        )
        log = tmp_path / "co2.log"
        with log.open("w") as out:
            service = subprocess.Popen(
                [sys.executable, "-m", "klimapuls.co2"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while "reads" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "reads" in log.read_text(), log.read_text()
        pid = broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        before = len(log.read_text().splitlines())
        time.sleep(8)
        assert service.poll() is None, log.read_text()
        after = log.read_text().splitlines()[before:]
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    finally:
        broker.stop()
    errors = [line for line in after if "[ERROR]" in line or "[WARNING]" in line]
    # Unthrottled, eight seconds gave ~300 lines.
    assert len(errors) <= 12, "\n".join(errors)


def test_repeats_of_a_client_message_pass_once_per_window_and_are_counted() -> None:
    quiet = ClientRepeats(every=0.5)

    def record(name: str) -> logging.LogRecord:
        return logging.LogRecord(
            name, logging.ERROR, __file__, 1, "Unable connect to %r", ("x",), None
        )

    passed = [quiet.filter(record("aiokafka.conn")) for _ in range(50)]
    assert passed == [True] + [False] * 49
    # Another module's messages, and our own, are never held back.
    assert all(quiet.filter(record("klimapuls.bulk")) for _ in range(5))
    time.sleep(0.6)
    again = record("aiokafka.conn")
    assert quiet.filter(again)
    assert again.getMessage() == "Unable connect to 'x' (49 like it in the last 0.5 s)"
