"""`klimapuls produce`: every line validated, bad ones reported and dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from typer.testing import CliRunner

from klimapuls.cli import app
from klimapuls.settings import Settings
from tests.helpers import co2_event

CSV = """municipality_code,year,sector,subsector,tonnes_co2e,vintage,source
101,2022,energy,,1200.5,2023-05-01,Energi- og CO2-regnskabet
147,2022,transport,road,300,2023-05-01,Energi- og CO2-regnskabet
999,2022,energy,,10,2023-05-01,Energi- og CO2-regnskabet
151,2022,energy,,lots,2023-05-01,Energi- og CO2-regnskabet
"""


def _runner() -> CliRunner:
    return CliRunner()


def _env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.require_bootstrap_servers(),
        "KLIMAPULS_TOPIC_PREFIX": settings.topic_prefix,
    }


def test_dry_run_reports_each_bad_line_with_number_field_and_reason(
    tmp_path: Path,
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(CSV, encoding="utf-8")
    result = _runner().invoke(app, ["produce", "co2_account", str(path), "--dry-run"])
    assert result.exit_code == 1
    assert (
        f"{path}:4: municipality_code: '999' is not an allowed value" in result.output
    )
    assert f"{path}:5: tonnes_co2e: 'lots' is not a number" in result.output
    assert "2 valid (dry run, nothing sent), 2 invalid" in result.output


def test_dry_run_of_a_clean_jsonl_file_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "accounts.jsonl"
    path.write_text(
        "\n".join(json.dumps(co2_event("101", y, "energy", 1.0)) for y in (2020, 2021))
        + "\n\n",
        encoding="utf-8",
    )
    result = _runner().invoke(app, ["produce", "co2_account", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "2 valid" in result.output


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    result = _runner().invoke(app, ["produce", "weather", str(path), "--dry-run"])
    assert result.exit_code == 2
    assert "unknown kind" in result.output


def _drain(settings: Settings, topic: str, expected: int) -> list[dict[str, object]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.require_bootstrap_servers(),
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
        group_id=None,
    )
    messages = []
    try:
        for message in consumer:
            messages.append(json.loads(message.value))
            if len(messages) >= expected:
                break
    finally:
        consumer.close()
    return messages


@pytest.mark.timeout(120)
def test_valid_lines_are_sent_and_invalid_ones_go_to_the_dead_letter_topic(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _env(settings).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "accounts.csv"
    path.write_text(CSV, encoding="utf-8")
    result = _runner().invoke(app, ["produce", "co2_account", str(path)])
    assert result.exit_code == 1
    assert "2 sent, 2 invalid (sent to the dead-letter topic)" in result.output

    sent = _drain(settings, settings.topics.co2_account, 2)
    assert sorted(e["municipality_code"] for e in sent) == ["101", "147"]
    assert all(e["producer"] == "klimapuls-cli" for e in sent)
    assert sent[0]["event_id"] != sent[1]["event_id"]
    letters = _drain(settings, settings.topics.dead_letter, 2)
    assert sorted(letter["field"] for letter in letters) == [
        "municipality_code",
        "tonnes_co2e",
    ]
    assert {letter["origin"] for letter in letters} == {
        "accounts.csv:4",
        "accounts.csv:5",
    }


def test_the_same_csv_line_gets_the_same_event_id_every_time(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from klimapuls.producer.readers import read_events

    path = tmp_path / "accounts.csv"
    path.write_text(CSV, encoding="utf-8")
    first = [
        line.event for line in read_events("co2_account", path, "p", datetime.now(UTC))
    ]
    again = [
        line.event for line in read_events("co2_account", path, "p", datetime.now(UTC))
    ]
    assert [e and e["event_id"] for e in first] == [e and e["event_id"] for e in again]
