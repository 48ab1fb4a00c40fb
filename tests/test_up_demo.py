"""The README's run command: `klimapuls up --demo --once` on the embedded stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

UP_ARGS = ("up", "--demo", "--once", "--timeout", "300")


@pytest.mark.timeout(400)
def test_up_demo_once_processes_the_demo_and_prints_the_summary(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
        and not k.startswith("KLIMAPULS_")
    }
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "klimapuls", *UP_ARGS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=380,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "embedded Tansu" in output and "embedded PostgreSQL" in output
    assert "synthetic data" in output
    # Every family is processed; the malformed share of the mix is dead-lettered.
    for kind in ("co2_account", "fleet_status", "mobility_count", "initiative_status"):
        assert kind in output
    assert "12 dead letters" in output
    assert "Movia fleet" in output and "sustainable" in output
    assert "report missing" in output or "reports missing" in output
    # The summary lists every target of the domain brief.
    for target in (
        "region-co2-2030",
        "region-neutral-2045",
        "dk-climate-law-2030",
        "movia-fossil-free-2030",
        "sustainable-trips-2035",
        "bike-trips-2030",
        "raw-materials-2035",
    ):
        assert target in output
    # Synthetic DK2020 targets of the municipalities; alerts mailed to the
    # demo contacts and caught under the data folder.
    assert "syntetisk-dk2020-101-2030" in output
    assert "Alerts" in output and "alerts sent to" in output
    mails = list((tmp_path / ".klimapuls" / "mail").glob("*.eml"))
    assert mails, output
    texts = [m.read_bytes() for m in mails]
    assert all(b"X-Klimapuls-Message-Key: klimapuls-" in t for t in texts)
    assert any(b"target_status:syntetisk-dk2020-" in t for t in texts)
    # The summary waited for the alerts to settle: every target that slips
    # in the summary table (the demo DK2020 targets and region-co2-2030) was
    # mailed under its slip key (a target that slipped only while the data
    # arrived may have been mailed too, and resolved).
    slipping = set(
        re.findall(r"│ ([a-z0-9-]+) v\d+ .*│ (?:at_risk|off_track) +│", output)
    )
    mailed = {
        m.decode()
        for t in texts
        for m in re.findall(rb"target_status:([a-z0-9-]+):[0-9a-z-]+:\d{4}", t)
    }
    assert len(slipping) == 12 and slipping <= mailed, (slipping, mailed)
    # Firing: the slipping targets, and any that lost an achievement of more
    # than the demo's hold time while the data arrived (an upload half-way).
    alerts = next((line for line in output.splitlines() if "firing" in line), output)
    firing = re.search(r"(\d+) target_status", alerts)
    assert firing is not None, alerts
    lost = _lost_achievements(mails) - slipping
    assert 12 <= int(firing[1]) <= 12 + len(lost), (alerts, lost)
    assert "stack shut down cleanly" in output
    # Nothing is left running: the data folder's server is stopped.
    assert not (tmp_path / ".klimapuls" / "postgres" / "postmaster.pid").exists()


def _lost_achievements(mails: list[Path]) -> set[str]:
    """Targets mailed as no longer achieved ("før: nået")."""
    lost = set()
    for mail in mails:
        message = message_from_bytes(mail.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        assert body is not None
        for block in body.get_content().split("\n\n"):
            key = re.search(r"target_status:([a-z0-9-]+):", block)
            if key and "før: nået" in block:
                lost.add(key[1])
    return lost
