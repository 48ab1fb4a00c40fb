"""The alerts part of `klimapuls up --demo`: contacts, the mail catcher, a summary.

`start_demo_alerting` starts the embedded SMTP catcher (mails land in
`<data folder>/mail/`), points the alerts service at it with demo timings
(a short hold time, so the demo shows alerts within seconds) and stores
demo contacts with example addresses (example.org / example.com) for every
municipality, the regional coordinators and the Klimaalliancen secretariat.
`alerts_summary` waits until the alerts service has settled and prints how
many alerts went to whom, and where the mails are.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

from rich.console import Console
from sqlalchemy import Engine, text

from klimapuls.core.alert_state import Contact
from klimapuls.core.initiatives import (
    REGION_TOVHOLDER,
    SECRETARIAT_TOVHOLDER,
    initiative_id,
)
from klimapuls.core.reference import municipalities
from klimapuls.settings import Settings
from klimapuls.stack.mailcatcher import MailCatcher
from klimapuls.storage import contacts as contact_store
from klimapuls.storage import progress
from klimapuls.storage.db import in_transaction

__all__ = [
    "DEMO_HOLD_SECONDS",
    "alerts_summary",
    "demo_contacts",
    "seed_demo_contacts",
    "start_demo_alerting",
]

#: How long a condition must hold in the demo before it fires.
DEMO_HOLD_SECONDS = 8.0
_POLL_S = 0.5


def demo_contacts() -> list[Contact]:
    """A demo contact (example address) for every municipality and the region."""
    people = [
        Contact(
            f"Klimakoordinator {m.name} (demo)",
            m.name,
            "all",
            "email",
            f"klima@{initiative_id(m.name)}.example.org",
        )
        for m in municipalities()
    ]
    people.append(
        Contact(
            "Regional klimakoordinator (demo)",
            REGION_TOVHOLDER,
            "all",
            "email",
            "klima@regionh.example.org",
        )
    )
    people.append(
        Contact(
            "Klimaalliancens sekretariat (demo)",
            SECRETARIAT_TOVHOLDER,
            "all",
            "email",
            "sekretariat@klimaalliancen.example.com",
        )
    )
    return people


def seed_demo_contacts(engine: Engine) -> int:
    """Store the demo contacts (idempotent); returns how many were new."""
    people = demo_contacts()
    return in_transaction(engine, lambda conn: contact_store.add_contacts(conn, people))


def start_demo_alerting(settings: Settings) -> tuple[Settings, MailCatcher]:
    """Start the mail catcher; settings that point the alerts service at it."""
    catcher = MailCatcher(settings.data_dir / "mail")
    host, port = catcher.start()
    demo = settings.model_copy(
        update={
            "smtp_host": host,
            "smtp_port": port,
            "alert_from": "Klimapuls demo <klimapuls@example.org>",
            "alert_hold_seconds": DEMO_HOLD_SECONDS,
            "alert_digest_seconds": 2.0,
            "alert_evaluate_seconds": 3.0,
            "alert_send_seconds": 1.0,
        }
    )
    return demo, catcher


_SETTLED_SQL = """
SELECT
    (SELECT evaluated_at FROM alert_evaluation WHERE id = 1),
    (SELECT coalesce(max(observed_id), 0) FROM alert_evaluation),
    (SELECT coalesce(max(id), 0) FROM target_status_change),
    (SELECT max(changed_at) FROM target_status_change),
    (SELECT count(*) FROM alert
     WHERE state = 'pending' AND inhibited_by IS NULL),
    (SELECT count(*) FROM alert_delivery WHERE message_id IS NULL),
    (SELECT count(*) FROM alert_message WHERE state = 'pending')
"""


def _wait_settled(
    engine: Engine, statuses: Mapping[str, str], timeout_s: float
) -> bool:
    """Wait until the alerts have settled, and every message is sent.

    Settled: the targets service has logged the `statuses` the stored facts
    give (the summary's table; the series owners derive, and the targets
    service recomputes, a little after the last fact is stored), the alerts
    service evaluated after the newest logged status change, having seen it,
    and no alert waits for its hold time (each has fired, or cleared);
    held-back alerts wait for their feed, not the clock.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            evaluated, seen, newest, changed, holding, waiting, pending = conn.execute(
                text(_SETTLED_SQL)
            ).one()
            logged = {t: s for t, (s, *_) in progress.last_statuses(conn).items()}
        caught_up = all(logged.get(t) == s for t, s in statuses.items())
        after = evaluated is not None and (changed is None or evaluated > changed)
        quiet = not (holding or waiting or pending)
        if caught_up and after and seen >= newest and quiet:
            return True
        time.sleep(_POLL_S)
    return False


def alerts_summary(
    engine: Engine,
    console: Console,
    catcher: MailCatcher,
    statuses: Mapping[str, str],
    timeout_s: float = 90.0,
) -> None:
    """Wait for the alerts to settle on `statuses`; print who got how many, where.

    `statuses`: each target's status on the stored facts (as printed).
    """
    with console.status("waiting for the alerts service (hold time, sending)"):
        settled = _wait_settled(engine, statuses, timeout_s)
    with engine.connect() as conn:
        firing = conn.execute(
            text(
                "SELECT rule, count(*) FROM alert WHERE state IN "
                "('firing', 'acknowledged') GROUP BY rule ORDER BY rule"
            )
        ).all()
        held = conn.execute(
            text(
                "SELECT count(*) FROM alert WHERE inhibited_by IS NOT NULL "
                "AND state = 'pending'"
            )
        ).scalar_one()
        sent = conn.execute(
            text(
                "SELECT recipient, address, count(DISTINCT alert_key) "
                "FROM board.alerts_sent GROUP BY recipient, address "
                "ORDER BY 3 DESC, 1"
            )
        ).all()
        failed = conn.execute(
            text("SELECT count(*) FROM alert_message WHERE state = 'failed'")
        ).scalar_one()
    rules = ", ".join(f"{n} {rule}" for rule, n in firing) or "none"
    note = "" if settled else " [yellow](still settling)[/]"
    console.print(
        f"\n[bold]Alerts[/]{note}: firing {rules}; {held} held back by a stale "
        f"feed; {sum(n for *_, n in sent)} alerts sent to {len(sent)} recipients "
        f"in {catcher.received} mails, stored in {catcher.folder}"
        + (f"; {failed} messages failed (see klimapuls alerts list)" if failed else "")
    )
    by_count = Counter({f"{name} <{address}>": n for name, address, n in sent})
    for who, n in by_count.most_common(8):
        console.print(f"  {n:3d} alerts to {who}", markup=False, highlight=False)
    if len(by_count) > 8:
        console.print(f"  ... and {len(by_count) - 8} more recipients", highlight=False)
    console.print("  see them with: klimapuls alerts list", highlight=False)
