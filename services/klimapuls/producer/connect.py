"""Reaching the broker: fail fast, with one line naming the problem.

kafka-python waits 30 s to bootstrap from an address nobody answers and
then raises a bare timeout; a user who mistyped `KAFKA_BOOTSTRAP_SERVERS`
deserves better. So every producer first checks the list's form and that
at least one server accepts a TCP connection, within a few seconds.
"""

from __future__ import annotations

import socket

from klimapuls.core.errors import ConfigurationError, KlimapulsError
from klimapuls.settings import Settings

__all__ = ["BrokerUnavailableError", "check_reachable", "parse_servers"]

#: How long to wait for one server to accept a connection.
PROBE_TIMEOUT_S = 3.0


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


def check_reachable(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """The bootstrap list, once one of its servers accepts a connection."""
    servers = settings.require_bootstrap_servers()
    last: OSError | None = None
    for host, port in parse_servers(servers):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return servers
        except OSError as exc:
            last = exc
    reason = last.strerror if last is not None and last.strerror else str(last)
    raise BrokerUnavailableError(
        f"cannot reach the Kafka broker at {servers} (KAFKA_BOOTSTRAP_SERVERS): "
        f"{reason or 'no answer'}; is it running? (`klimapuls up` starts one)"
    )
