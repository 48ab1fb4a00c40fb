"""JSON webhooks (Teams/Slack-compatible bodies) over HTTP with `httpx`."""

from __future__ import annotations

import httpx

from klimapuls.core.alert_text import OutgoingMessage
from klimapuls.notify.channels import (
    ALERT_KEY_HEADER,
    MESSAGE_KEY_HEADER,
    ChannelError,
)

__all__ = ["WebhookChannel"]


class WebhookChannel:
    """POST the message's JSON body to the contact's URL."""

    def __init__(self, timeout_s: float = 15.0) -> None:
        self.timeout_s = timeout_s

    def send(self, message: OutgoingMessage) -> None:
        """POST once; a 2xx answer is delivered, anything else a `ChannelError`."""
        headers = {
            MESSAGE_KEY_HEADER: message.key,
            # Header values must be ASCII; alert keys are ids and codes.
            ALERT_KEY_HEADER: ", ".join(message.alert_keys)
            .encode("ascii", "replace")
            .decode(),
            "Idempotency-Key": message.key,
        }
        try:
            response = httpx.post(
                message.address,
                json=dict(message.payload),
                headers=headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ChannelError(f"webhook {message.address}: {exc}") from exc
        if not response.is_success:
            raise ChannelError(
                f"webhook {message.address}: HTTP {response.status_code}"
            )
