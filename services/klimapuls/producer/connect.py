"""Reaching the broker: fail fast, with one line naming the problem.

kafka-python waits 30 s to bootstrap from an address nobody answers and
then raises a bare timeout; a user who mistyped `KAFKA_BOOTSTRAP_SERVERS`
deserves better. So every producer first checks the list's form and that
at least one server accepts a TCP connection, within a few seconds.

A port that is open but is not Kafka (an HTTP server, say) would still hang
the client for 30 s, so on a plaintext listener the check also sends a
Kafka `ApiVersions` request (v0) and wants a Kafka answer to it within the
same short timeout. TLS and SASL listeners are only checked for TCP: the
probe speaks no TLS.
"""

from __future__ import annotations

import socket
import struct
import time

from klimapuls.core.errors import ConfigurationError, KlimapulsError
from klimapuls.settings import Settings

__all__ = ["BrokerUnavailableError", "check_reachable", "parse_servers"]

#: How long to wait for one server to accept a connection, and to answer.
PROBE_TIMEOUT_S = 3.0
#: ApiVersions v0, correlation id, client id: a request every broker answers.
_API_VERSIONS = 18
_CORRELATION = 0x4B50  # "KP"
_CLIENT = b"klimapuls-probe"
_REQUEST = struct.pack(">hhih", _API_VERSIONS, 0, _CORRELATION, len(_CLIENT)) + _CLIENT
#: An ApiVersions answer is small; a length beyond this is not Kafka talking.
_MAX_ANSWER = 1 << 20


class _NotKafkaError(Exception):
    """The server answered, but not as a Kafka broker (the reason says how)."""


class BrokerUnavailableError(KlimapulsError):
    """No Kafka broker answers, or it stopped acknowledging what was sent."""


def parse_servers(servers: str) -> list[tuple[str, int]]:
    """`host:port,host:port` as pairs; a `ConfigurationError` names a bad entry."""
    pairs: list[tuple[str, int]] = []
    for entry in (part.strip() for part in servers.split(",")):
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"KAFKA_BOOTSTRAP_SERVERS: {entry!r} is not host:port "
                "(e.g. 127.0.0.1:9092)"
            )
        if any(c.isspace() for c in host):
            raise ConfigurationError(
                f"KAFKA_BOOTSTRAP_SERVERS: {entry!r} is not host:port "
                "(a host name has no spaces)"
            )
        pairs.append((host, int(port)))
    return pairs


def _receive(sock: socket.socket, size: int, deadline: float) -> bytes:
    data = b""
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _NotKafkaError("no answer to a Kafka ApiVersions request")
        sock.settimeout(left)
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            raise _NotKafkaError("no answer to a Kafka ApiVersions request") from None
        if not chunk:
            raise _NotKafkaError("it closed the connection on a Kafka request")
        data += chunk
    return data


def _probe(sock: socket.socket, timeout_s: float) -> None:
    """Raise `_NotKafkaError` unless the server answers ApiVersions as Kafka does."""
    deadline = time.monotonic() + timeout_s
    sock.sendall(struct.pack(">i", len(_REQUEST)) + _REQUEST)
    head = _receive(sock, 8, deadline)
    size, correlation = struct.unpack(">ii", head)
    if not 6 <= size <= _MAX_ANSWER or correlation != _CORRELATION:
        hint = head.decode("ascii", "replace")
        said = f" (it answered {hint!r}...)" if hint.isprintable() else ""
        raise _NotKafkaError(f"its answer is not a Kafka response{said}")


def check_reachable(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """The bootstrap list, once one of its servers answers as a Kafka broker.

    One line names the problem: nobody listens, or what listens is not Kafka
    (with several servers, each one's problem: one not Kafka, one away).
    """
    servers = settings.require_bootstrap_servers()
    plaintext = settings.kafka.security_protocol == "PLAINTEXT"
    last: OSError | None = None
    not_kafka: list[tuple[str, str]] = []
    unreachable: list[tuple[str, str]] = []
    for host, port in parse_servers(servers):
        try:
            with socket.create_connection((host, port), timeout=timeout_s) as sock:
                if plaintext:
                    _probe(sock, timeout_s)
                return servers
        except _NotKafkaError as exc:
            not_kafka.append((f"{host}:{port}", str(exc)))
        except OSError as exc:
            last = exc
            unreachable.append((f"{host}:{port}", _reason(exc)))
    if not_kafka and unreachable:
        # Name every problem: mending only the one named would not be enough.
        problems = [
            f"{server} does not answer as a Kafka broker ({why})"
            for server, why in not_kafka
        ] + [f"cannot reach {server} ({why})" for server, why in unreachable]
        raise BrokerUnavailableError(
            f"no Kafka broker at {servers} (KAFKA_BOOTSTRAP_SERVERS): "
            f"{'; '.join(problems)}; are those the broker's ports, and does it "
            "run? (`klimapuls up` starts one)"
        )
    if not_kafka:
        said = "; ".join(f"{server}: {why}" for server, why in not_kafka)
        raise BrokerUnavailableError(
            f"{servers} (KAFKA_BOOTSTRAP_SERVERS) accepts connections but does "
            f"not answer as a Kafka broker ({said}); is that the broker's port?"
        )
    reason = _reason(last) if last is not None else ""
    raise BrokerUnavailableError(
        f"cannot reach the Kafka broker at {servers} (KAFKA_BOOTSTRAP_SERVERS): "
        f"{reason or 'no answer'}; is it running? (`klimapuls up` starts one)"
    )


def _reason(exc: OSError) -> str:
    """`Connection refused`: why a server could not be reached."""
    return exc.strerror or str(exc) or "no answer"
