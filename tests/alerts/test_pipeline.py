"""The alerts service as a real process: broker, PostgreSQL, SMTP in the test."""

from __future__ import annotations

import time
from datetime import date

from klimapuls.core.alert_state import Contact
from klimapuls.producer import EventProducer
from klimapuls.settings import Settings
from klimapuls.stack.runner import Stack
from tests.alerts.conftest import SmtpServer, add_contacts
from tests.helpers import co2_event, target_event, wait_for

# The service runs on the real clock: the newest year is last year, so the
# CO2 account is not stale (which would hold the slip back).
LAST = date.today().year - 1
SLIPPING = {1990: 1000.0, **{LAST - n: 670.0 + 10 * n for n in range(4)}}


def test_a_slipping_target_reaches_its_municipality_by_mail_once(
    settings: Settings, engine: object, smtp: SmtpServer
) -> None:
    add_contacts(
        engine,  # type: ignore[arg-type]
        Contact(
            "Klima Ballerup", "Ballerup", "co2", "email", "klima@ballerup.example.org"
        ),
        Contact(
            "Klima Gentofte", "Gentofte", "co2", "email", "klima@gentofte.example.org"
        ),
    )
    alerting = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "alert_hold_seconds": 0,
            "alert_digest_seconds": 0,
            "alert_evaluate_seconds": 1,
            "alert_send_seconds": 0.5,
        }
    )
    stack = Stack(alerting)
    stack.start_services(("co2", "targets", "alerts"))
    try:
        with EventProducer(alerting, name="pytest") as producer:
            for year, tonnes in SLIPPING.items():
                vintage = f"{year + 1}-01-15" if year == LAST else None
                event = co2_event("151", year, "energy", tonnes, vintage)
                producer.send("co2_account", event)
            producer.send(
                "target",
                target_event("dk2020-151-2030", scope="151", reduction_pct=70),
            )
            producer.flush()
        [mail] = wait_for(
            lambda: smtp.to("klima@ballerup.example.org"), lambda m: len(m) >= 1, 120
        )
        assert mail["X-Klimapuls-Alert-Key"] == "target_status:dk2020-151-2030:151:2030"
        time.sleep(4)  # several evaluation and send rounds later ...
        stack.check_services()
    finally:
        stack.stop()
    assert len(smtp.to("klima@ballerup.example.org")) == 1  # ... still one
    assert smtp.to("klima@gentofte.example.org") == []
