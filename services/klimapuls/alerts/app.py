"""The alerts service's faust app: `target-status` in, messages out.

Besides the batch agent, two timers: evaluation (`KLIMAPULS_ALERT_EVALUATE_
SECONDS`: feeds go stale and hold times pass without any message) and
sending (`KLIMAPULS_ALERT_SEND_SECONDS`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import faust

from klimapuls.alerts.handlers import TARGET_STATUS, AlertSender, AlertsHandler
from klimapuls.core.errors import RetryableError
from klimapuls.notify import (
    Channel,
    NotConfiguredChannel,
    SmtpChannel,
    WebhookChannel,
)
from klimapuls.settings import Settings
from klimapuls.storage.db import create_db_engine
from klimapuls.streaming import service_app

__all__ = ["SERVICE", "channels_of", "create_app"]

SERVICE = "alerts"
log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def channels_of(settings: Settings) -> dict[str, Channel]:
    """The channels these settings configure (e-mail waits without a host)."""
    email: Channel = NotConfiguredChannel(
        "KLIMAPULS_SMTP_HOST is not set: e-mails wait until it is"
    )
    if settings.smtp_host:
        password = settings.smtp_password
        email = SmtpChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.alert_from,
            user=settings.smtp_user,
            password=password.get_secret_value() if password else None,
            starttls=settings.smtp_starttls,
        )
    return {"email": email, "webhook": WebhookChannel()}


def create_app(settings: Settings) -> faust.App:
    """Build the app; settings come from the entry point."""
    engine = create_db_engine(settings.require_database_url())
    rules = settings.alert_rules()
    handler = AlertsHandler(
        engine,
        _now,
        rules,
        SERVICE,
        min_interval=timedelta(seconds=settings.alert_evaluate_seconds),
    )
    sender = AlertSender(engine, _now, channels_of(settings), rules, settings.board_url)
    # The evaluation timer is the service's refresh.
    timed = settings.model_copy(
        update={"refresh_seconds": settings.alert_evaluate_seconds}
    )
    app = service_app(timed, SERVICE, (TARGET_STATUS,), handler)

    @app.timer(interval=settings.alert_send_seconds)
    async def send_due() -> None:
        try:
            report = await asyncio.to_thread(sender.send_due)
        except RetryableError as exc:
            log.warning("sending alerts failed, retrying on the next tick: %s", exc)
            return
        if report.sent or report.failed:
            log.info(
                "alerts: %d messages sent, %d attempts failed, %d given up",
                report.sent,
                report.failed,
                report.given_up,
            )

    return app
