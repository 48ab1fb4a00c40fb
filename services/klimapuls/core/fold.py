"""Events from files, folded into facts in memory: the services' rules, offline.

`klimapuls progress --offline` (and anyone reading event files) folds every
validated event with `EventFold`, which judges each one with the same
identity rules as the services' storage (`klimapuls.core.identity`): a new
fact is kept, a duplicate counts once, a reused id or a clashing target
version, or a bus another garage lists on that date, is refused with the
same reason a dead letter would carry. The result is the same `Facts` the
database holds after the services stored the same events, so
`klimapuls.core.progress.evaluate_all` gives the same numbers on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.fleet import BusRegister, FleetSnapshot
from klimapuls.core.identity import Judgement, Ledger, Verdict
from klimapuls.core.initiatives import (
    PROGRAMME_INFRASTRUCTURE,
    Initiative,
    StatusReport,
    reference_initiatives,
    round_start,
)
from klimapuls.core.mobility import (
    MobilityCount,
    restated_counts,
    site_years,
)
from klimapuls.core.model import Co2Account, Target
from klimapuls.core.progress import Facts, MobilityYears
from klimapuls.core.reference import seed_target_events
from klimapuls.core.validation import EVENT_KINDS, parse_json, preview, validate_event

__all__ = ["EventFold", "InputLine", "kind_of", "read_jsonl", "read_value"]


@dataclass
class EventFold:
    """Folds validated events of every family into `Facts`, judging each one.

    Starts with the seed targets (as the database does after `db upgrade`)
    unless `seed_targets` is False.
    """

    seed_targets: bool = True
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    accounts: list[Co2Account] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    fleet: list[FleetSnapshot] = field(default_factory=list)
    #: Which unit lists each bus on a date, as the fleet service's `fleet_bus`.
    buses: BusRegister = field(default_factory=BusRegister)
    counts: list[MobilityCount] = field(default_factory=list)
    reports: list[StatusReport] = field(default_factory=list)
    #: Initiatives first seen in reports (not in the reference data), as the
    #: initiatives service registers them: the first report names them.
    registered: dict[str, Initiative] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seed_targets:
            for event in seed_target_events():
                self.judge("target", validate_event("target", event))

    def judge(self, kind: str, event: Mapping[str, Any]) -> Judgement:
        """Judge one validated event and keep it if it is a new fact."""
        ledger = self.ledgers.setdefault(kind, Ledger(kind))
        admit = self.buses.admit if kind == "fleet_status" else None
        judgement = ledger.judge(event, admit)
        if judgement.verdict is Verdict.NEW:
            # A re-sent fact is kept under the id of its new report.
            self._keep(kind, {**event, "event_id": judgement.identity.event_id})
        return judgement

    def add(self, kind: str, event: Mapping[str, Any]) -> Verdict:
        """`judge`, raising `EventValidationError` for a refused event."""
        judgement = self.judge(kind, event)
        if judgement.verdict is Verdict.REJECTED:
            raise judgement.error
        return judgement.verdict

    def _keep(self, kind: str, event: Mapping[str, Any]) -> None:
        if kind == "co2_account":
            self.accounts.append(Co2Account.from_event(dict(event)))
        elif kind == "target":
            self.targets.append(Target.from_event(dict(event)))
        elif kind == "fleet_status":
            self.fleet.append(FleetSnapshot.from_event(event))
        elif kind == "mobility_count":
            self.counts.append(MobilityCount.from_event(event))
        elif kind == "initiative_status":
            self.reports.append(StatusReport.from_event(event))
            self._register(event)

    def _register(self, event: Mapping[str, Any]) -> None:
        known = {i.initiative_id for i in reference_initiatives()}
        initiative = event["initiative_id"]
        if initiative in known or initiative in self.registered:
            return
        self.registered[initiative] = Initiative(
            initiative_id=initiative,
            name=event.get("initiative_name") or initiative,
            programme=event.get("programme")
            or event.get("group")
            or PROGRAMME_INFRASTRUCTURE,
            group=event.get("group") or "",
            tovholdere=(),
        )

    def initiatives(
        self, reports: Sequence[StatusReport] | None = None
    ) -> list[Initiative]:
        """Every listed initiative: the reference ones and those first seen here.

        One known only from reports is expected from its first reported round
        (as the initiatives service records it). Given `reports` (those known
        on a date), one first seen in none of them is not listed yet.
        """
        listed = list(reference_initiatives())
        seen = self.reports if reports is None else reports
        for initiative, item in self.registered.items():
            rounds = [r.round for r in seen if r.initiative_id == initiative]
            if reports is not None and not rounds:
                continue
            since = round_start(min(rounds)) if rounds else None
            listed.append(replace(item, since=since))
        return sorted(listed, key=lambda i: i.initiative_id)

    def facts(self) -> Facts:
        """The facts folded so far, with every count (for known-on views)."""
        mobility = MobilityYears.of_sites(site_years(self.counts))
        return Facts(
            targets=tuple(self.targets),
            accounts=tuple(self.accounts),
            fleet=tuple(self.fleet),
            trips=mobility.trips,
            bike_sites=mobility.bike_sites,
            counts=tuple(self.counts),
            restated_counts=tuple(restated_counts(self.counts)),
        )


def kind_of(event: Mapping[str, Any]) -> str:
    """The event family named by an event's `schema` field (`co2_account.v1`)."""
    declared = event.get("schema")
    if not isinstance(declared, str) or not declared:
        raise EventValidationError(
            [FieldIssue("schema", "is required: it names the event family")]
        )
    kind = declared.rsplit(".", 1)[0]
    if kind not in EVENT_KINDS:
        raise EventValidationError(
            [
                FieldIssue(
                    "schema",
                    f"{preview(declared)} is not a known schema; one of "
                    + ", ".join(f"{k}.v1" for k in EVENT_KINDS),
                )
            ]
        )
    return kind


@dataclass(frozen=True)
class InputLine:
    """One non-blank line of a JSONL file: a valid event or why it is not."""

    number: int
    kind: str | None
    event: dict[str, Any] | None
    error: EventValidationError | None = None
    #: The event's text as written (the line, or the value in a `.json` file).
    raw: str = ""


def read_value(
    number: int, raw: str, parsed: Any, now: datetime | None = None
) -> InputLine:
    """Validate one parsed JSON value as an event of the family it names."""
    try:
        if not isinstance(parsed, dict):
            raise EventValidationError(
                [FieldIssue("$", "each event must be a JSON object")]
            )
        kind = kind_of(parsed)
        event = validate_event(kind, parsed, now=now)
    except EventValidationError as exc:
        return InputLine(number, None, None, exc, raw)
    return InputLine(number, kind, event, None, raw)


def read_jsonl(
    lines: Iterable[str], now: datetime | None = None
) -> Iterator[InputLine]:
    """Parse and validate JSONL lines of any event family (blank lines skipped).

    `now` is the reader's clock, passed to the validators as the services
    pass theirs, so a file and the services refuse the same future times.
    """
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            parsed = parse_json(raw)
        except EventValidationError as exc:
            yield InputLine(number, None, None, exc, raw)
            continue
        yield read_value(number, raw, parsed, now)
