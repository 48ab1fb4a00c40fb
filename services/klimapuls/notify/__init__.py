"""Alert channels: the adapters that hand a rendered message to the world.

`SmtpChannel` (e-mail, `smtplib`) and `WebhookChannel` (JSON over HTTP,
Teams/Slack-compatible, `httpx`). Each raises `ChannelError` when the far
side is away or refuses, and the alerts service retries with back-off.
Every message carries its key (`Message-ID`, `X-Klimapuls-Message-Key`,
`X-Klimapuls-Alert-Key`) so a receiver can drop the one possible repeat.
"""

from klimapuls.notify.channels import Channel, ChannelError, NotConfiguredChannel
from klimapuls.notify.smtp import SmtpChannel
from klimapuls.notify.webhook import WebhookChannel

__all__ = [
    "Channel",
    "ChannelError",
    "NotConfiguredChannel",
    "SmtpChannel",
    "WebhookChannel",
]
