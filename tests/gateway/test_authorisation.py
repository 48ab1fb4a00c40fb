"""Who may write which scope: the rule in core, applied by every handler.

Issue 9, defect 7: an event with `producer: "not-frederiksberg"` for
municipality 147 replaced Frederiksberg's current agriculture figure with a
newer vintage. Now an event whose producer holds no grant for the scope it
writes is a dead letter on `producer`, and nothing is stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.batch import Incoming
from tests.helpers import co2_event, scalar

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _clock() -> datetime:
    return NOW


def _incoming(kind: str, event: dict[str, Any], offset: int = 0) -> Incoming:
    return Incoming(kind, json.dumps(event).encode(), f"{kind}:0:{offset}")


def _current_agriculture(engine: Engine) -> Any:
    return scalar(
        engine,
        "SELECT tonnes_co2e FROM co2_account_current "
        "WHERE municipality_code = '147' AND year = 2022 AND sector = 'agriculture'",
    )


def test_a_stranger_cannot_replace_frederiksbergs_figure(engine: Engine) -> None:
    handler = Co2Handler(engine, _clock)
    own = co2_event("147", 2022, "agriculture", 14802.8, "2023-05-01")
    assert handler.handle([_incoming("co2_account", own)]).stored == 1

    forged = {
        **co2_event("147", 2022, "agriculture", 0.0, "2024-05-01"),
        "producer": "not-frederiksberg",
    }
    result = handler.handle([_incoming("co2_account", forged, 1)])

    assert result.stored == 0
    assert [d.field for d in result.dead_letters] == ["producer"]
    assert "not-frederiksberg" in result.dead_letters[0].reason
    assert float(_current_agriculture(engine)) == pytest.approx(14802.8)
    assert (
        scalar(engine, "SELECT count(*) FROM co2_account WHERE producer <> 'pytest'")
        == 0
    )
