"""The address file of a running `klimapuls up`: `DATA_DIR/stack.json`.

`up` writes the addresses it uses (`DATABASE_URL`, the broker) and the
process ids of what it started, so that

- other commands (`klimapuls progress`, `produce`, ...) find the embedded
  stack of the current data folder when the variables are unset;
- the next `up` starts the broker on the same address (producers reconnect),
  and finds what a crashed run left behind (by process id and command line,
  never by name alone) to stop it before starting anew.

The file is readable by its owner only: it may hold a configured
`DATABASE_URL` with its password.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from pydantic import SecretStr

from klimapuls.settings import Settings

__all__ = ["STATE_FILE", "StackState", "process_matches", "running_stack"]

STATE_FILE = "stack.json"


def process_matches(pid: int | None, marker: str) -> bool:
    """Whether `pid` is alive and its command line contains `marker`."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return marker in " ".join(process.cmdline())
    except (psutil.Error, OSError):
        return False


@dataclass
class StackState:
    """What one `klimapuls up` runs, and where."""

    up_pid: int
    database_url: str | None = None
    bootstrap_servers: str | None = None
    broker_port: int | None = None
    broker_pid: int | None = None
    embedded_database: bool = False
    services: dict[str, int] = field(default_factory=dict)
    running: bool = True

    @staticmethod
    def path(data_dir: Path) -> Path:
        """Where the file of `data_dir` is."""
        return data_dir / STATE_FILE

    def write(self, data_dir: Path) -> Path:
        """Write atomically, readable by the owner only."""
        path = self.path(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle, indent=2)
        partial.replace(path)
        return path

    @classmethod
    def read(cls, data_dir: Path) -> StackState | None:
        """The file's content, or None when there is none (or it is unreadable)."""
        try:
            raw: dict[str, Any] = json.loads(
                cls.path(data_dir).read_text(encoding="utf-8")
            )
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None

    @property
    def up_alive(self) -> bool:
        """Whether the `up` that wrote this file still runs."""
        return self.running and process_matches(self.up_pid, "klimapuls")

    def fill(self, settings: Settings) -> Settings:
        """`settings` with the unset addresses taken from this stack."""
        updates: dict[str, Any] = {}
        if settings.database_url is None and self.database_url:
            updates["database_url"] = SecretStr(self.database_url)
        if not settings.kafka.bootstrap_servers and self.bootstrap_servers:
            updates["kafka"] = settings.kafka.model_copy(
                update={"bootstrap_servers": self.bootstrap_servers}
            )
        return settings.model_copy(update=updates) if updates else settings


def running_stack(data_dir: Path) -> StackState | None:
    """The state of the `up` running for `data_dir`, if one does."""
    state = StackState.read(data_dir)
    return state if state is not None and state.up_alive else None
