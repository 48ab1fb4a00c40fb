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

#: How much of a refusing answer's body the reason keeps.
_BODY_CHARS = 200


class WebhookChannel:
    """POST the message's JSON body to the contact's URL."""

    def __init__(self, timeout_s: float = 15.0) -> None:
        self.timeout_s = timeout_s

    def send(self, message: OutgoingMessage) -> None:
        """POST once; a 2xx answer is delivered, anything else a `ChannelError`.

        The error is `permanent` for a 4xx other than 408 and 429 (a wrong or
        revoked URL, a rejected body), so the sender gives up after a few
        attempts and marks the message failed with the status and reason.
        """
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
                f"webhook {message.address}: {_refusal(response)}",
                permanent=_permanent(response.status_code),
            )


def _permanent(status: int) -> bool:
    """A 4xx answer refuses for good, except 408 (timeout) and 429 (slow down).

    5xx, 408, 429 (and connection errors) are the far side being away or
    busy: retried with back-off until taken.
    """
    return 400 <= status < 500 and status not in (408, 429)


def _refusal(response: httpx.Response) -> str:
    """`HTTP 410 Gone: channel_is_archived`: status, reason, the body's start."""
    text = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    body = " ".join(response.text.split())[:_BODY_CHARS]
    return f"{text}: {body}" if body else text
