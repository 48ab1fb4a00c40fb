"""Log records of the Kafka client, held to one per kind every few seconds.

While a broker is away aiokafka logs the same error at every reconnect: a
batch worker some forty times a second, a faust service some seventy (its
fetcher, heartbeat and metadata each retry), which fills a log file in an
outage. Both kinds of service add `ClientRepeats` to their log handlers
(`quiet_client_repeats`) once logging is set up.
"""

from __future__ import annotations

import logging
import time

__all__ = ["ClientRepeats", "quiet_client_repeats"]


class ClientRepeats(logging.Filter):
    """Let each of the Kafka client's messages through once per `every` seconds.

    The first of a kind passes; its repeats within `every` seconds are
    counted, and the next one after them says how many there were. Only
    aiokafka's records: the services' own retries back off already.
    """

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self._last: dict[tuple[str, int, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether `record` is logged (False: a repeat, counted)."""
        if not record.name.startswith("aiokafka"):
            return True
        key = (record.name, record.levelno, record.msg)
        now = time.monotonic()
        since, held = self._last.get(key, (float("-inf"), 0))
        if now - since < self.every:
            self._last[key] = (since, held + 1)
            return False
        self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} like it in the last {self.every:g} s)"
        return True


def quiet_client_repeats(logger: logging.Logger | None = None) -> None:
    """Add one `ClientRepeats` to every handler of `logger` (the root logger)."""
    quiet = ClientRepeats()
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, ClientRepeats) for f in handler.filters):
            handler.addFilter(quiet)
