"""A service whose broker goes away logs the client's errors sparingly.

While a broker is away aiokafka logs the same error at every reconnect,
some forty times a second per batch worker and seventy for a faust service:
a log file filled up in an outage. Given a batch service (co2) or a faust
service (targets) on a broker of its own, when that broker is killed, each
kind of client message appears about once per ten seconds, and the service
keeps running (its supervisor need not restart it: the broker may come
back). Stopped then, the faust service still exits, in 8 s.
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

from klimapuls.logs import ClientRepeats, quiet_client_repeats
from klimapuls.settings import KafkaSettings, Settings
from klimapuls.stack import EmbeddedBroker, ensure_topics


def _on_a_broker_killed(
    settings: Settings, tmp_path: Path, service: str, ready: str
) -> tuple[list[str], subprocess.Popen[bytes], Path]:
    """Start `service` on a broker of its own, kill the broker once it logs `ready`.

    Returns the log lines of the eight seconds after the kill, the service
    (still running) and its log file.
    """
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
                "KLIMAPULS_KAFKA_SESSION_TIMEOUT_S": "6",
                "KLIMAPULS_KAFKA_HEARTBEAT_S": "1",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "services"),
            }
        )
        log = tmp_path / f"{service}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", f"klimapuls.{service}"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while ready not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready in log.read_text(), log.read_text()
        pid = broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        before = len(log.read_text().splitlines())
        time.sleep(8)
        assert process.poll() is None, log.read_text()
        return log.read_text().splitlines()[before:], process, log
    finally:
        broker.stop()


def _complaints(lines: list[str]) -> list[str]:
    return [line for line in lines if "[ERROR]" in line or "[WARNING]" in line]


@pytest.mark.timeout(120)
def test_a_killed_broker_does_not_flood_a_batch_services_log(
    settings: Settings, tmp_path: Path
) -> None:
    after, service, _ = _on_a_broker_killed(settings, tmp_path, "co2", "reads")
    service.send_signal(signal.SIGTERM)
    service.wait(30)
    # Unthrottled, eight seconds gave ~300 lines.
    assert len(_complaints(after)) <= 12, "\n".join(after)


@pytest.mark.timeout(120)
def test_a_faust_service_whose_broker_is_killed_logs_sparingly_and_still_stops(
    settings: Settings, tmp_path: Path
) -> None:
    after, service, log = _on_a_broker_killed(
        settings, tmp_path, "targets", "Worker ready"
    )
    # Unthrottled, eight seconds gave ~600 lines.
    assert len(_complaints(after)) <= 12, "\n".join(after)
    stopping = len(log.read_text().splitlines())
    service.send_signal(signal.SIGTERM)
    # faust's consumer never finishes stopping without its broker: the
    # service exits anyway after 8 s, saying why in one line.
    assert service.wait(20) == 1
    said = log.read_text().splitlines()[stopping:]
    assert not any(line.startswith("Traceback") for line in said), "\n".join(said)
    [last] = [line for line in said if "[ERROR] stopping took over" in line]
    assert "read again at the next start" in last


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
    assert again.getMessage() == "Unable connect to 'x' (after 49 like it, held back)"


def test_each_handler_of_a_service_shows_the_first_of_a_kind_and_counts_alike() -> None:
    logger = logging.getLogger("aiokafka.test_two_handlers")
    logger.propagate = False
    shown: list[list[str]] = [[], []]

    class Keep(logging.Handler):
        def __init__(self, into: list[str]) -> None:
            super().__init__()
            self.into = into

        def emit(self, record: logging.LogRecord) -> None:
            self.into.append(record.getMessage())

    for into in shown:
        logger.addHandler(Keep(into))
    try:
        quiet_client_repeats(logger)
        for _ in range(3):
            logger.error("Unable connect to %r", "x")
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    assert shown == [["Unable connect to 'x'"], ["Unable connect to 'x'"]]
