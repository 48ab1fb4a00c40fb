"""An embedded SMTP catcher for the demo: every mail is kept as a `.eml` file.

`klimapuls up --demo` points the alerts service at it, so the demo's alerts
are real e-mails over SMTP that land under the data folder (`mail/`) instead
of anyone's inbox. aiosmtpd runs the server in a thread of the CLI process.
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["MailCatcher"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Store:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        key = re.sub(r"[^A-Za-z0-9-]", "", str(mail.get("X-Klimapuls-Message-Key", "")))
        with self.lock:
            self.count += 1
            name = f"{self.count:04d}-{key or 'mail'}.eml"
        (self.folder / name).write_bytes(envelope.content)
        return "250 OK"


class MailCatcher:
    """SMTP on 127.0.0.1 that stores every mail under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.host = "127.0.0.1"
        self.port = _free_port()
        self._store = _Store(self.folder)
        self._controller: Controller | None = None

    def start(self) -> tuple[str, int]:
        """Start listening; returns (host, port)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(self._store, hostname=self.host, port=self.port)
        self._controller.start()
        return self.host, self.port

    @property
    def received(self) -> int:
        """Mails caught since `start`."""
        return self._store.count

    def stop(self) -> None:
        """Stop listening (the stored mails stay)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
