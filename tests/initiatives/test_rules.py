"""The pure initiative rules: ids, missing reports, tovholdere, hand-overs."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from klimapuls.core.errors import EventValidationError
from klimapuls.core.initiatives import (
    Initiative,
    StatusReport,
    initiative_id,
    missing_reports,
    reference_initiatives,
    tovholder_timeline,
    without_tovholder,
)
from klimapuls.core.validation import validate_event

RING_4_SYD = "udvidelse-af-motorring-4-ved-koebenhavn-sydlig"


def report(
    initiative: str,
    round_: str,
    *tovholdere: str,
    status: str = "received",
    at: str | None = None,
    effective: date | None = None,
) -> StatusReport:
    return StatusReport(
        event_id=f"{initiative}:{round_}:{at or ''}",
        initiative_id=initiative,
        round=round_,
        status=status,
        tovholdere=tovholdere,
        reported_at=datetime.fromisoformat(at or f"{round_}-15T12:00:00+00:00"),
        effective_date=effective,
    )


def initiative(ident: str, *tovholdere: str, programme: str = "p") -> Initiative:
    return Initiative(ident, ident, programme, "g", tovholdere, date(2022, 10, 1))


def test_ids_spell_out_danish_letters_and_are_unique() -> None:
    assert initiative_id("Udvidelse af Motorring 4 ved København (sydlig)") == (
        RING_4_SYD
    )
    assert initiative_id("Pulje til Støj") == "pulje-til-stoej"
    assert initiative_id("Åbning af Ærø-ruten") == "aabning-af-aeroe-ruten"
    ids = [i.initiative_id for i in reference_initiatives()]
    assert len(ids) == len(set(ids)) == 7 + 49


def test_the_reference_lists_five_initiatives_without_a_tovholder() -> None:
    names = {i.name for i in without_tovholder(reference_initiatives(), [])}
    assert names == {
        "Pulje til Støj",
        "Pulje til Cyklisme",
        "Initiativ for klimavenlig asfalt (inkl. afgiftstab)",
        "Pulje til ladeinfrastruktur langs statsvejnettet",
        "Forsøg med støjstærekasser",
    }


def test_an_initiative_without_a_report_in_a_round_is_missing() -> None:
    listed = [initiative("a", "Ballerup"), initiative("b"), initiative("c", "Ishøj")]
    other = initiative("x", "Herlev", programme="other")
    reports = [
        report("a", "2022-10", "Ballerup"),
        report("a", "2023-10", "Ballerup"),
        report("c", "2023-10", "Ishøj"),
    ]
    missing = missing_reports([*listed, other], reports)
    assert [(m.initiative_id, m.round, m.tovholdere) for m in missing] == [
        ("b", "2022-10", ()),
        ("c", "2022-10", ("Ishøj",)),
        ("b", "2023-10", ()),
    ]


def test_a_completed_initiative_is_no_longer_expected() -> None:
    listed = [initiative("a", "Ballerup"), initiative("b", "Herlev")]
    reports = [
        report("a", "2022-10", "Ballerup", status="completed"),
        report("b", "2022-10", "Herlev"),
        report("b", "2023-10", "Herlev"),
    ]
    assert missing_reports(listed, reports) == []


def test_a_new_tovholder_set_is_a_dated_hand_over_and_history_is_kept() -> None:
    timeline = tovholder_timeline(
        RING_4_SYD,
        ["Høje-Taastrup"],
        date(2022, 10, 1),
        [
            report(RING_4_SYD, "2022-10", "Høje-Taastrup"),
            report(RING_4_SYD, "2024-10", "Ishøj", effective=date(2024, 6, 1)),
            report(RING_4_SYD, "2023-10", "Høje-Taastrup"),
        ],
    )
    [handover] = timeline.handovers
    assert (handover.round, handover.effective_date) == ("2024-10", date(2024, 6, 1))
    assert (handover.previous, handover.new) == (("Høje-Taastrup",), ("Ishøj",))
    assert [(a.tovholder, a.valid_from, a.valid_to) for a in timeline.assignments] == [
        ("Høje-Taastrup", date(2022, 10, 1), date(2024, 6, 1)),
        ("Ishøj", date(2024, 6, 1), None),
    ]
    assert timeline.at(date(2023, 10, 1)) == ("Høje-Taastrup",)
    assert timeline.current() == ("Ishøj",)


def test_a_restated_round_counts_only_in_its_newest_version() -> None:
    timeline = tovholder_timeline(
        "a",
        ["Ballerup"],
        date(2022, 10, 1),
        [
            report("a", "2023-10", "Herlev", at="2023-10-15T12:00:00+00:00"),
            report("a", "2023-10", "Ballerup", at="2023-11-01T12:00:00+00:00"),
        ],
    )
    assert timeline.handovers == ()
    assert timeline.current() == ("Ballerup",)


def test_an_initiative_known_only_from_reports_starts_with_its_first_report() -> None:
    timeline = tovholder_timeline(
        "new",
        None,
        None,
        [report("new", "2023-10", "Gladsaxe"), report("new", "2024-10", "Gladsaxe")],
    )
    assert timeline.handovers == ()
    assert [(a.tovholder, a.valid_from) for a in timeline.assignments] == [
        ("Gladsaxe", date(2023, 10, 1))
    ]


def _event(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "schema": "initiative_status.v1",
        "event_id": "t:1",
        "producer": "pytest",
        "reported_at": "2023-10-15T12:00:00+02:00",
        "initiative_id": RING_4_SYD,
        "round": "2023-10",
        "status": "confirmed",
        "tovholdere": ["Høje-Taastrup"],
    }
    event.update(fields)
    return event


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"tovholdere": ["Hoeje Taastrup"]}, "tovholdere.0", "not a municipality"),
        ({"status": "missing"}, "status", "is not one of"),
        ({"round": "2023-13"}, "round", "does not match"),
        ({"effective_date": "2026-01-01"}, "effective_date", "more than a year"),
    ],
)
def test_bad_reports_are_rejected_naming_the_field(
    fields: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(EventValidationError) as caught:
        validate_event("initiative_status", _event(**fields))
    assert caught.value.field == field
    assert reason in str(caught.value)
