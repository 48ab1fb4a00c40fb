"""E-mail over SMTP (`smtplib`), one connection per message."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from klimapuls.core.alert_text import OutgoingMessage
from klimapuls.notify.channels import (
    ALERT_KEY_HEADER,
    MESSAGE_KEY_HEADER,
    ChannelError,
)

__all__ = ["SmtpChannel", "email_of"]

_TIMEOUT_S = 15.0


def _permanent(exc: BaseException) -> bool:
    """A 5xx reply refuses for good; 4xx and connection trouble are temporary."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600
    return False


def email_of(message: OutgoingMessage, sender: str) -> EmailMessage:
    """The e-mail of a message: Danish text, its keys in the headers.

    `Message-ID` is derived from the message key, so a re-sent message has
    the same id and mail systems (and people) can tell it is a repeat.
    """
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = formataddr((message.recipient, message.address))
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{message.key}@klimapuls>"
    mail[MESSAGE_KEY_HEADER] = message.key
    mail[ALERT_KEY_HEADER] = ", ".join(message.alert_keys)
    mail.set_content(message.text)
    return mail


class SmtpChannel:
    """Send e-mails through an SMTP server (optionally STARTTLS and login)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.user = user
        self.password = password
        self.starttls = starttls

    def send(self, message: OutgoingMessage) -> None:
        """Deliver one e-mail; `ChannelError` when the server is away or refuses."""
        mail = email_of(message, self.sender)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=_TIMEOUT_S) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(
                f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}",
                permanent=_permanent(exc),
            ) from exc
