"""Start the platform: embedded servers where no URL is given, then services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from klimapuls.core.errors import KlimapulsError
from klimapuls.settings import Settings
from klimapuls.stack.broker import EmbeddedBroker
from klimapuls.stack.database import EmbeddedPostgres
from klimapuls.stack.topics import ensure_topics
from klimapuls.storage import prepare_database

__all__ = ["SERVICES", "Stack"]

#: The services `klimapuls up` runs, each as `python -m klimapuls.NAME`.
SERVICES: tuple[str, ...] = (
    "alerts",
    "co2",
    "deadletter",
    "fleet",
    "initiatives",
    "mobility",
    "targets",
)

# Tansu's JoinGroup waits half the session timeout: keep it short, dev only.
_DEV_SESSION_TIMEOUT_S = 6
_DEV_HEARTBEAT_S = 1


@dataclass
class Stack:
    """The running platform; `stop()` shuts down what `start()` started."""

    settings: Settings
    broker: EmbeddedBroker | None = None
    database: EmbeddedPostgres | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        """Where the embedded servers and services write their logs."""
        return self.settings.data_dir / "logs"

    def start_servers(self) -> Settings:
        """Start what is not configured; return settings pointing at both servers."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        updates: dict[str, object] = {}
        kafka = self.settings.kafka
        if not kafka.bootstrap_servers:
            self.broker = EmbeddedBroker(self.log_dir / "tansu.log")
            kafka = kafka.model_copy(update={"bootstrap_servers": self.broker.start()})
            updates["kafka"] = kafka
            updates["kafka_session_timeout_s"] = _DEV_SESSION_TIMEOUT_S
            updates["kafka_heartbeat_s"] = _DEV_HEARTBEAT_S
        if self.settings.database_url is None:
            self.database = EmbeddedPostgres(self.settings.data_dir / "postgres")
            updates["database_url"] = SecretStr(self.database.start())
        self.settings = self.settings.model_copy(update=updates)
        return self.settings

    def prepare(self) -> list[str]:
        """Migrate and seed the database, create missing topics."""
        prepare_database(self.settings.require_database_url())
        return ensure_topics(self.settings)

    def service_env(self) -> dict[str, str]:
        """Environment of a service process: the same settings, as variables."""
        s = self.settings
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": s.require_bootstrap_servers(),
                "DATABASE_URL": s.require_database_url(),
                "KLIMAPULS_TOPIC_PREFIX": s.topic_prefix,
                "KLIMAPULS_TOPIC_PARTITIONS": str(s.topic_partitions),
                "KLIMAPULS_GROUP_PREFIX": s.group_prefix,
                "KLIMAPULS_DATA_DIR": str(s.data_dir.resolve()),
                "KLIMAPULS_BATCH_SIZE": str(s.batch_size),
                "KLIMAPULS_BATCH_SECONDS": str(s.batch_seconds),
            }
        )
        if s.kafka_session_timeout_s is not None:
            env["KLIMAPULS_KAFKA_SESSION_TIMEOUT_S"] = str(s.kafka_session_timeout_s)
        if s.kafka_heartbeat_s is not None:
            env["KLIMAPULS_KAFKA_HEARTBEAT_S"] = str(s.kafka_heartbeat_s)
        env.update(s.alert_env())
        return env

    def start_services(self, names: tuple[str, ...] = SERVICES) -> None:
        """Start each service as its own process, logging to the data folder."""
        env = self.service_env()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            log = open(self.log_dir / f"{name}.log", "ab")
            self.processes[name] = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", f"klimapuls.{name}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def check_services(self) -> None:
        """Raise if a service process has died."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                log = self.log_dir / f"{name}.log"
                raise KlimapulsError(
                    f"service {name} exited with code {code}; see {log}"
                )

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop services (SIGTERM, then wait), then the embedded servers."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.database is not None:
            self.database.stop()
            self.database = None
