"""Who may write which scope: the rule in core, applied by every handler.

Issue 9, defect 7: an event with `producer: "not-frederiksberg"` for
municipality 147 replaced Frederiksberg's current agriculture figure with a
newer vintage. Now an event whose producer holds no grant for the scope it
writes is a dead letter on `producer`, and nothing is stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from klimapuls.co2.handlers import Co2Handler
from klimapuls.core.authorisation import BUILTIN_PRODUCERS
from klimapuls.core.batch import Incoming
from klimapuls.fleet.handlers import FleetHandler
from klimapuls.initiatives.handlers import InitiativeHandler
from klimapuls.mobility.handlers import MobilityHandler
from klimapuls.simulator.events import SIMULATOR_PRODUCER
from klimapuls.storage import grants
from klimapuls.storage.db import in_transaction
from klimapuls.storage.grants import grant_cache
from klimapuls.targets.handlers import TargetsHandler
from tests.fleet.factories import fleet_event
from tests.helpers import co2_event, scalar, target_event
from tests.mobility.factories import count_event

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


EXAMPLES = Path(__file__).parent.parent.parent / "schemas" / "examples"


def _example(kind: str, **fields: Any) -> dict[str, Any]:
    event = json.loads((EXAMPLES / f"{kind}.v1.json").read_text(encoding="utf-8"))
    return {**event, **fields}


def _refused_fields(result: Any) -> list[str]:
    return [d.field for d in result.dead_letters]


def test_each_family_is_checked_against_the_scope_it_writes(
    engine: Engine, grant: Callable[..., None]
) -> None:
    grant("movia", "movia")
    grant("frederiksberg", "147")
    grant("ishoej", "183")
    cases = [
        (
            FleetHandler,
            "fleet_status",
            fleet_event(
                "movia",
                "2025-04-01",
                contract="A",
                diesel=1,
            ),
            "movia",
            True,
        ),
        (
            FleetHandler,
            "fleet_status",
            fleet_event("arriva", "2025-04-01", contract="A", diesel=1),
            "movia",
            False,
        ),
        (
            MobilityHandler,
            "mobility_count",
            count_event("s1", "bike", "2025-03-03T08:00:00+01:00", 5),
            "frederiksberg",
            True,
        ),
        (
            MobilityHandler,
            "mobility_count",
            count_event(
                "s2", "bike", "2025-03-03T08:00:00+01:00", 5, municipality_code="101"
            ),
            "frederiksberg",
            False,
        ),
        (
            TargetsHandler,
            "target",
            target_event("fb-2030", scope="147"),
            "frederiksberg",
            True,
        ),
        (
            TargetsHandler,
            "target",
            target_event("kbh-2030", scope="101"),
            "frederiksberg",
            False,
        ),
        # A tovholder reports on its initiative (Ishøj is 183); others may not.
        (
            InitiativeHandler,
            "initiative_status",
            _example("initiative_status"),
            "ishoej",
            True,
        ),
        (
            InitiativeHandler,
            "initiative_status",
            _example("initiative_status", event_id="x:2"),
            "frederiksberg",
            False,
        ),
    ]
    for handler_type, kind, event, producer, allowed in cases:
        result = handler_type(engine, _clock).handle(
            [_incoming(kind, {**event, "producer": producer})]
        )
        assert _refused_fields(result) == ([] if allowed else ["producer"]), (
            kind,
            producer,
        )
        assert result.stored == (1 if allowed else 0), (kind, producer)


def test_a_region_grant_is_the_regions_scope_and_a_family_grant_only_that_family(
    engine: Engine, grant: Callable[..., None]
) -> None:
    grant("region-hovedstaden", "1084")
    grant("tællinger", "*", kinds=("mobility_count",))
    co2 = Co2Handler(engine, _clock)
    region_writes_101 = {
        **co2_event("101", 2022, "energy", 1.0),
        "producer": "region-hovedstaden",
    }
    counter_writes_co2 = {
        **co2_event("147", 2022, "energy", 1.0),
        "producer": "tællinger",
    }
    counts = {
        **count_event(
            "s9", "car", "2025-03-03T08:00:00+01:00", 9, municipality_code="101"
        ),
        "producer": "tællinger",
    }

    result = co2.handle(
        [
            _incoming("co2_account", region_writes_101),
            _incoming("co2_account", counter_writes_co2, 1),
        ]
    )
    counted = MobilityHandler(engine, _clock).handle(
        [_incoming("mobility_count", counts)]
    )

    assert _refused_fields(result) == ["producer", "producer"]
    assert counted.stored == 1


def test_a_new_grant_takes_effect_without_a_restart(
    engine: Engine, grant: Callable[..., None]
) -> None:
    handler = Co2Handler(engine, _clock)
    handler.grants = grant_cache(engine, ttl_s=0.1)
    event = {**co2_event("147", 2022, "energy", 1.0), "producer": "frederiksberg"}
    assert handler.handle([_incoming("co2_account", event)]).stored == 0
    grant("frederiksberg", "147")
    time.sleep(0.2)
    assert handler.handle([_incoming("co2_account", event, 1)]).stored == 1


def test_the_built_in_producers_are_granted_by_db_upgrade(engine: Engine) -> None:
    granted = in_transaction(engine, grants.load_grants)
    for producer in (*BUILTIN_PRODUCERS, SIMULATOR_PRODUCER):
        assert granted.allows(producer, "co2_account", "147"), producer
    assert not granted.allows("klimapuls-gateway", "co2_account", "147")


def test_a_counting_site_keeps_the_municipality_of_its_first_count(
    engine: Engine, grant: Callable[..., None]
) -> None:
    grant("frederiksberg", "147")
    grant("gentofte", "157")
    grant("tællinger", "147", "157", kinds=("mobility_count",))
    handler = MobilityHandler(engine, _clock)
    start = "2025-03-03T08:00:00+01:00"

    def count(site: str, code: str, producer: str, revision: int) -> dict[str, Any]:
        event = count_event(
            site,
            "bike",
            start,
            10 + revision,
            municipality_code=code,
            revision=revision,
        )
        return {**event, "producer": producer}

    # Given a Frederiksberg site (its first count) and a Gentofte site:
    first = [
        count("frb-1", "147", "frederiksberg", 0),
        count("gen-1", "157", "gentofte", 0),
    ]
    assert (
        handler.handle(
            [_incoming("mobility_count", e, i) for i, e in enumerate(first)]
        ).stored
        == 2
    )
    # When Gentofte moves Frederiksberg's site into Gentofte, and
    # Frederiksberg moves Gentofte's site into Frederiksberg (each writes a
    # municipality it is granted):
    moves = [
        count("frb-1", "157", "gentofte", 1),
        count("gen-1", "147", "frederiksberg", 1),
    ]
    result = handler.handle(
        [_incoming("mobility_count", e, 10 + i) for i, e in enumerate(moves)]
    )
    # Then both are dead letters naming the site's municipality; nothing moved.
    assert result.stored == 0
    assert [(d.field, d.reason) for d in result.dead_letters] == [
        (
            "municipality_code",
            "municipality_code: counting site 'frb-1' belongs to municipality "
            "'147'; producer 'gentofte' may not move it to '157'",
        ),
        (
            "municipality_code",
            "municipality_code: counting site 'gen-1' belongs to municipality "
            "'157'; producer 'frederiksberg' may not move it to '147'",
        ),
    ]
    assert scalar(engine, "SELECT count(*) FROM mobility_count") == 2
    # A producer granted both municipalities may correct a site into the
    # other; the site still belongs to the first (so its owner can correct back).
    moved = count("frb-1", "157", "tællinger", 2)
    assert handler.handle([_incoming("mobility_count", moved, 20)]).stored == 1
    back = count("frb-1", "147", "frederiksberg", 3)
    assert handler.handle([_incoming("mobility_count", back, 21)]).stored == 1
    assert (
        scalar(
            engine,
            "SELECT municipality_code FROM mobility_count "
            "WHERE site_id = 'frb-1' AND is_current",
        )
        == "147"
    )
    assert (
        scalar(
            engine,
            "SELECT municipality_code FROM counting_site WHERE site_id = 'frb-1'",
        )
        == "147"
    )
