"""`klimapuls contacts` and `klimapuls alerts list/ack` against a real database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from klimapuls.cli import main
from tests.alerts.conftest import Pipeline
from tests.alerts.test_delivery import _slip
from tests.helpers import scalar


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):  # type: ignore[no-untyped-def]
    """Run `klimapuls ARGS` in this process (as the console script would)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "80")

    def run(*args: str) -> Ran:
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def test_contacts_are_managed_from_the_cli_and_a_yaml_file(cli, tmp_path: Path) -> None:
    listing = tmp_path / "contacts.yaml"
    listing.write_text(
        "contacts:\n"
        "  - name: Klima Ballerup\n    party: '151'\n    topics: [co2, mobility]\n"
        "    email: klima@ballerup.example.org\n",
        "utf-8",
    )
    assert "2 contacts added" in cli("contacts", "import", str(listing)).stdout
    again = cli("contacts", "import", str(listing))
    assert "0 contacts added" in again.stdout  # importing twice adds nothing
    added = cli(
        "contacts",
        "add",
        "Regionens kanal",
        "--party",
        "Region Hovedstaden",
        "--topic",
        "all",
        "--webhook",
        "https://hooks.example.org/x",
    )
    assert added.returncode == 0, added.stderr
    listed = json.loads(cli("contacts", "list", "--json").stdout)
    assert {(c["party"], c["topic"], c["channel"]) for c in listed} == {
        ("Ballerup", "co2", "email"),
        ("Ballerup", "mobility", "email"),
        ("Region Hovedstaden", "all", "webhook"),
    }
    bad = cli(
        "contacts",
        "add",
        "X",
        "--party",
        "Ballerup",
        "--topic",
        "weather",
        "--email",
        "x@example.org",
    )
    assert (
        bad.returncode == 1 and "topics" in bad.stderr and "Traceback" not in bad.stderr
    )
    removed = cli("contacts", "remove", "klima@ballerup.example.org")
    assert "2 contacts removed" in removed.stdout
    assert len(json.loads(cli("contacts", "list", "--json").stdout)) == 1


def test_an_email_address_in_another_case_is_the_same_contact(cli) -> None:
    def add(address: str) -> str:
        return cli(
            "contacts", "add", "Klima", "--party", "151", "--topic", "co2",
            "--email", address,
        ).stdout  # fmt: skip

    assert "1 contacts added" in add("klima@ballerup.example.org")
    # The same mailbox again: listing it twice would mail every notice twice.
    assert "0 contacts added (1 known already)" in add("Klima@Ballerup.Example.org")
    assert len(json.loads(cli("contacts", "list", "--json").stdout)) == 1
    removed = cli("contacts", "remove", "KLIMA@ballerup.example.org")
    assert "1 contacts removed" in removed.stdout
    assert json.loads(cli("contacts", "list", "--json").stdout) == []


def test_alerts_list_shows_what_fires_for_whom_and_ack_stops_it(
    cli, pipeline: Pipeline, engine: Engine
) -> None:
    cli(
        "contacts",
        "add",
        "Klima Ballerup",
        "--party",
        "Ballerup",
        "--topic",
        "co2",
        "--email",
        "klima@ballerup.example.org",
    )
    _slip(pipeline)
    pipeline.send()
    listed = json.loads(cli("alerts", "list", "--json").stdout)
    slip = next(a for a in listed if a["target_id"] == "dk2020-151-2030")
    assert slip["state"] == "firing"
    assert slip["recipients"][0]["address"] == "klima@ballerup.example.org"
    assert any("sent" in n for n in slip["notified"])
    table = cli("alerts", "list").stdout
    assert "dk2020-151-2030" in table and "firing" in table
    acked = cli("alerts", "ack", str(slip["alert_id"]), "--by", "Ballerup")
    assert acked.returncode == 0, acked.stderr
    pipeline.later(minutes=1)
    pipeline.evaluate()
    state = scalar(
        engine, f"SELECT state FROM alert WHERE alert_id = {slip['alert_id']}"
    )
    assert state == "acknowledged"
    again = cli("alerts", "ack", str(slip["alert_id"]))
    assert again.returncode == 1 and "acknowledged" in again.stderr
    unknown = cli("alerts", "ack", "999999")
    assert unknown.returncode == 1 and "no alert" in unknown.stderr
