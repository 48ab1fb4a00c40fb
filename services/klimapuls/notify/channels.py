"""What every channel offers: send one message, or say why not."""

from __future__ import annotations

from typing import Protocol

from klimapuls.core.alert_text import OutgoingMessage
from klimapuls.core.errors import KlimapulsError

__all__ = ["Channel", "ChannelError", "NotConfiguredChannel"]

#: Header names that carry a message's keys (e-mail and webhook alike).
MESSAGE_KEY_HEADER = "X-Klimapuls-Message-Key"
ALERT_KEY_HEADER = "X-Klimapuls-Alert-Key"


class ChannelError(KlimapulsError):
    """The channel did not take the message (away, refused).

    `permanent`: the far side refused it for good (an SMTP 5xx reply, an
    HTTP 4xx other than 408 and 429), so retrying will not help; the sender
    gives up after a few attempts. Else (away, an SMTP 4xx reply, an HTTP
    5xx, 408 or 429) it is retried with back-off until it is taken.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Channel(Protocol):
    """A way to reach a recipient."""

    def send(self, message: OutgoingMessage) -> None:
        """Hand `message` over; raise `ChannelError` if it was not taken."""
        ...


class NotConfiguredChannel:
    """A channel without settings: every message waits until it is configured."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send(self, message: OutgoingMessage) -> None:
        """Refuse, naming what is missing (the message stays pending)."""
        raise ChannelError(self.reason)
