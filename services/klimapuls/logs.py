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

    The first of a kind (logger, level and message text before its
    arguments) passes; its repeats within `every` seconds are counted, and
    the next one to pass says how many were held back since the last shown.
    Only aiokafka's records: the services' own retries back off already.
    One filter per handler: each counts what its handler was offered.
    """

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self._last: dict[tuple[str, int, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether `record` is logged (False: a repeat, counted)."""
        if not record.name.startswith("aiokafka"):
            return True
        # The text as logged, before another handler's filter added its count.
        original = record.__dict__.setdefault(_ORIGINAL, record.msg)
        key = (record.name, record.levelno, original)
        now = time.monotonic()
        since, held = self._last.get(key, (float("-inf"), 0))
        if now - since < self.every:
            self._last[key] = (since, held + 1)
            return False
        self._last[key] = (now, 0)
        record.msg = (
            f"{original} (after {held} like it, held back)" if held else original
        )
        return True


#: Where `ClientRepeats` keeps a record's own message text.
_ORIGINAL = "klimapuls_client_msg"


def quiet_client_repeats(logger: logging.Logger | None = None) -> None:
    """Give every handler of `logger` (the root logger) a `ClientRepeats`."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, ClientRepeats) for f in handler.filters):
            handler.addFilter(ClientRepeats())
