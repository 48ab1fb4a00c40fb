"""Initiatives, reporting rounds and tovholdere: the pure rules.

An initiative (a VIP climate project, an infrastructure project, ...) belongs
to a programme whose initiatives report their status once per round (`YYYY-MM`,
e.g. `2023-10`). Three things are derived, never sent:

- a **missing report**: an initiative expected in a round of its programme
  (a round exists once any initiative of the programme reported in it) that
  has no report there. Initiatives are expected from the date they were
  listed, and no longer after a round reported them `completed` or `stopped`;
- **initiatives without a tovholder**: open initiatives whose current set of
  tovholdere is empty ("it is proposed to attach a tovholder");
- **tovholder hand-overs**: the set of tovholdere in a round differs from the
  set before it. Each hand-over is dated (the report's `effective_date`, else
  the first day of the round) and every tovholder's assignment is kept as an
  interval `[valid_from, valid_to)`, so history is never overwritten. A
  round's set is that of its newest report that names one: a report that
  leaves `tovholdere` out (an older round of a re-imported table) restates
  the status only, so importing a table with more rounds adds hand-overs
  and never moves older ones.

The storage layer mirrors these functions in SQL views and derived tables.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

from klimapuls.core.errors import FieldIssue
from klimapuls.core.reference import municipalities

__all__ = [
    "CLOSED_STATUSES",
    "PROGRAMME_CLIMATE",
    "PROGRAMME_INFRASTRUCTURE",
    "REGION_TOVHOLDER",
    "SECRETARIAT_TOVHOLDER",
    "Assignment",
    "Handover",
    "Initiative",
    "MissingReport",
    "StatusReport",
    "TovholderTimeline",
    "current_reports",
    "initiative_id",
    "initiative_issues",
    "known_tovholdere",
    "missing_reports",
    "naming_reports",
    "reference_initiatives",
    "round_end",
    "round_start",
    "tovholder_timeline",
    "without_tovholder",
]

#: Programme of the infrastructure table (`vip_infrastructure_status.csv`).
PROGRAMME_INFRASTRUCTURE = "vip_infrastruktur"
#: Programme of the seven VIP climate projects (`vip_climate_projects.csv`).
PROGRAMME_CLIMATE = "vip_klima"
#: Tovholdere that are not municipalities.
REGION_TOVHOLDER = "Region Hovedstaden"
SECRETARIAT_TOVHOLDER = "Klimaalliancen"
#: After a round reports one of these, the initiative is no longer expected.
CLOSED_STATUSES = frozenset({"completed", "stopped"})

# The infrastructure table starts with the October 2022 round; the climate
# projects ran 2020-2023. Their reference tovholdere count from these dates.
_INFRASTRUCTURE_SINCE = date(2022, 10, 1)
_CLIMATE_SINCE = date(2020, 1, 1)

_DANISH = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "ae", "Ø": "oe"})
_MAX_ID = 121  # the schema's initiative_id pattern allows 121 characters


def initiative_id(name: str) -> str:
    """A stable id from a Danish name: `Udvidelse af Ring 4 (nordlig)` -> slug.

    Danish letters are spelt out (ø -> oe) so ids stay readable and distinct;
    other accents are dropped, everything else becomes single hyphens.
    """
    text = name.translate(_DANISH).replace("Å", "aa")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) < 2:
        raise ValueError(f"cannot derive an initiative id from {name!r}")
    return slug[:_MAX_ID].rstrip("-")


def round_start(round_: str) -> date:
    """The first day of a reporting round `YYYY-MM`."""
    year, month = round_.split("-")
    return date(int(year), int(month), 1)


def round_end(round_: str) -> date:
    """The day after a reporting round `YYYY-MM`: the first of the next month."""
    start = round_start(round_)
    if start.month == 12:
        return date(start.year + 1, 1, 1)
    return date(start.year, start.month + 1, 1)


@cache
def known_tovholdere() -> frozenset[str]:
    """Names a tovholder may have: a municipality, the region, the secretariat."""
    return frozenset(
        {m.name for m in municipalities()} | {REGION_TOVHOLDER, SECRETARIAT_TOVHOLDER}
    )


def initiative_issues(event: Mapping[str, Any]) -> list[FieldIssue]:
    """Domain rules of an `initiative_status.v1` event the schema cannot say."""
    issues = [
        FieldIssue(
            f"tovholdere.{i}",
            f"{name!r} is not a municipality of Region Hovedstaden, "
            f"{REGION_TOVHOLDER!r} or {SECRETARIAT_TOVHOLDER!r}",
        )
        for i, name in enumerate(event.get("tovholdere", []))
        if name not in known_tovholdere()
    ]
    try:
        start = round_start(event["round"])
    except ValueError:
        # The schema's pattern lets `0000-01` through; no date has year 0.
        return [*issues, FieldIssue("round", "year 0 is not a reporting round")]
    effective = event.get("effective_date")
    if effective is not None:
        latest = date(min(start.year + 1, date.max.year), start.month, 1)
        if date.fromisoformat(effective) > latest:
            issues.append(
                FieldIssue(
                    "effective_date", "more than a year after the reporting round"
                )
            )
    return issues


@dataclass(frozen=True)
class Initiative:
    """An initiative followed by status reports, with its reference tovholdere."""

    initiative_id: str
    name: str
    programme: str
    group: str
    tovholdere: tuple[str, ...]
    since: date | None = None
    year: int | None = None
    estimate_dkk_m: float | None = None
    note: str | None = None


def _data(name: str) -> str:
    return resources.files("klimapuls.core").joinpath("data", name).read_text("utf-8")


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(";") if part.strip())


def _optional_int(cell: str) -> int | None:
    return int(cell) if cell.strip() else None


def _optional_float(cell: str) -> float | None:
    return float(cell) if cell.strip() else None


@cache
def reference_initiatives() -> tuple[Initiative, ...]:
    """The seven VIP climate projects and the infrastructure initiatives.

    Raises `ValueError` if two names give the same id (ids must be unique).
    """
    result: list[Initiative] = []
    for row in csv.DictReader(io.StringIO(_data("vip_climate_projects.csv"))):
        result.append(
            Initiative(
                initiative_id=initiative_id(row["project"]),
                name=row["project"],
                programme=PROGRAMME_CLIMATE,
                group=PROGRAMME_CLIMATE,
                tovholdere=_split(row["tovholdere"]),
                since=_CLIMATE_SINCE,
                note=(
                    "continues in Klimaalliancen from 2024: "
                    + row["continues_in_klimaalliancen_from_2024"]
                ),
            )
        )
    for row in csv.DictReader(io.StringIO(_data("vip_infrastructure_status.csv"))):
        result.append(
            Initiative(
                initiative_id=initiative_id(row["project"]),
                name=row["project"],
                programme=PROGRAMME_INFRASTRUCTURE,
                group=row["group"],
                tovholdere=_split(row["tovholdere"]),
                since=_INFRASTRUCTURE_SINCE,
                year=_optional_int(row["year"]),
                estimate_dkk_m=_optional_float(row["estimate_dkk_m"]),
                note=row["note"] or None,
            )
        )
    seen: dict[str, str] = {}
    for item in result:
        if item.initiative_id in seen:
            raise ValueError(
                f"{item.name!r} and {seen[item.initiative_id]!r} share the id "
                f"{item.initiative_id!r}"
            )
        seen[item.initiative_id] = item.name
    return tuple(result)


@dataclass(frozen=True)
class StatusReport:
    """One stored status report of an initiative in a round."""

    event_id: str
    initiative_id: str
    round: str
    status: str
    #: None: the report does not say who held the initiative (the set stays).
    tovholdere: tuple[str, ...] | None
    reported_at: datetime
    effective_date: date | None = None

    @property
    def slot(self) -> tuple[str, str]:
        """What this report competes for: one initiative in one round."""
        return (self.initiative_id, self.round)

    @property
    def rank(self) -> tuple[datetime, str]:
        """Order within a slot: the latest `reported_at` counts (then event id)."""
        return (self.reported_at, self.event_id)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> StatusReport:
        """Build from a validated `initiative_status.v1` event."""
        effective = event.get("effective_date")
        named = event.get("tovholdere")
        return cls(
            event_id=event["event_id"],
            initiative_id=event["initiative_id"],
            round=event["round"],
            status=event["status"],
            tovholdere=None if named is None else tuple(named),
            reported_at=datetime.fromisoformat(event["reported_at"]),
            effective_date=date.fromisoformat(effective) if effective else None,
        )


def current_reports(
    reports: Iterable[StatusReport],
) -> dict[tuple[str, str], StatusReport]:
    """The report that counts per (initiative, round): the newest `reported_at`.

    Ties are broken by event id so the choice never depends on arrival order.
    """
    current: dict[tuple[str, str], StatusReport] = {}
    for report in reports:
        best = current.get(report.slot)
        if best is None or report.rank > best.rank:
            current[report.slot] = report
    return current


def naming_reports(
    reports: Iterable[StatusReport],
) -> dict[tuple[str, str], StatusReport]:
    """Per (initiative, round), the newest report that names its tovholdere.

    Reports that leave `tovholdere` out are skipped: they say nothing about
    who held the initiative, so they cannot move a hand-over.
    """
    return current_reports(r for r in reports if r.tovholdere is not None)


@dataclass(frozen=True)
class Assignment:
    """One tovholder of one initiative over `[valid_from, valid_to)`."""

    initiative_id: str
    tovholder: str
    valid_from: date | None
    valid_to: date | None = None
    from_round: str | None = None
    to_round: str | None = None


@dataclass(frozen=True)
class Handover:
    """The set of tovholdere changed: who had it, who took over, from when."""

    initiative_id: str
    round: str
    effective_date: date
    previous: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True)
class TovholderTimeline:
    """Every assignment and hand-over of one initiative, oldest first."""

    assignments: tuple[Assignment, ...]
    handovers: tuple[Handover, ...]

    def current(self) -> tuple[str, ...]:
        """The tovholdere now (open assignments), sorted."""
        return tuple(
            sorted(a.tovholder for a in self.assignments if a.valid_to is None)
        )

    def at(self, day: date) -> tuple[str, ...]:
        """The tovholdere in charge on `day`, sorted."""
        return tuple(
            sorted(
                a.tovholder
                for a in self.assignments
                if (a.valid_from is None or a.valid_from <= day)
                and (a.valid_to is None or day < a.valid_to)
            )
        )


def tovholder_timeline(
    initiative_id: str,
    reference: Sequence[str] | None,
    since: date | None,
    reports: Iterable[StatusReport],
) -> TovholderTimeline:
    """Assignments and hand-overs from the reference set and the reports.

    `reference` is the set listed in the reference data (valid from `since`),
    or None for an initiative known only from reports, whose first report
    naming tovholdere then sets the starting set without a hand-over. Per
    round the newest report naming tovholdere counts (`naming_reports`),
    rounds in order; a hand-over is dated with that report's
    `effective_date`, else the first day of its round, and never before the
    previous change (a date out of order is moved up to it).
    """
    ordered = sorted(naming_reports(reports).values(), key=lambda r: r.round)
    open_since: dict[str, tuple[date | None, str | None]] = {}
    closed: list[Assignment] = []
    handovers: list[Handover] = []
    last_change = since
    if reference is not None:
        open_since = {name: (since, None) for name in reference}
    elif ordered:
        first = ordered.pop(0)
        last_change = first.effective_date or round_start(first.round)
        open_since = {
            name: (last_change, first.round) for name in first.tovholdere or ()
        }
    for report in ordered:
        new = set(report.tovholdere or ())
        if new == set(open_since):
            continue
        day = report.effective_date or round_start(report.round)
        if last_change is not None and day < last_change:
            day = last_change
        previous = tuple(sorted(open_since))
        for name in previous:
            if name not in new:
                valid_from, from_round = open_since.pop(name)
                closed.append(
                    Assignment(
                        initiative_id, name, valid_from, day, from_round, report.round
                    )
                )
        for name in sorted(new - set(open_since)):
            open_since[name] = (day, report.round)
        handovers.append(
            Handover(initiative_id, report.round, day, previous, tuple(sorted(new)))
        )
        last_change = day
    still_open = [
        Assignment(initiative_id, name, valid_from, None, from_round)
        for name, (valid_from, from_round) in sorted(open_since.items())
    ]
    assignments = sorted(
        [*closed, *still_open],
        key=lambda a: (a.valid_from or date.min, a.tovholder),
    )
    return TovholderTimeline(tuple(assignments), tuple(handovers))


@dataclass(frozen=True)
class MissingReport:
    """An initiative expected in a round that did not report, and who should."""

    initiative_id: str
    programme: str
    round: str
    tovholdere: tuple[str, ...]


def _closed_before(
    current: Mapping[tuple[str, str], StatusReport], initiative: str, round_: str
) -> bool:
    return any(
        r.round < round_ and r.status in CLOSED_STATUSES
        for (i, _), r in current.items()
        if i == initiative
    )


def missing_reports(
    initiatives: Iterable[Initiative], reports: Iterable[StatusReport]
) -> list[MissingReport]:
    """Every missing report, by programme, round and initiative.

    A programme's rounds are those any of its initiatives reported in.
    """
    listed = list(initiatives)
    all_reports = list(reports)
    current = current_reports(all_reports)
    programme_of = {i.initiative_id: i.programme for i in listed}
    rounds: dict[str, set[str]] = {}
    for initiative, round_ in current:
        if initiative in programme_of:
            rounds.setdefault(programme_of[initiative], set()).add(round_)
    missing: list[MissingReport] = []
    for item in listed:
        timeline = tovholder_timeline(
            item.initiative_id,
            item.tovholdere,
            item.since,
            (r for r in all_reports if r.initiative_id == item.initiative_id),
        )
        for round_ in sorted(rounds.get(item.programme, ())):
            start = round_start(round_)
            if item.since is not None and start < item.since:
                continue
            if (item.initiative_id, round_) in current:
                continue
            if _closed_before(current, item.initiative_id, round_):
                continue
            missing.append(
                MissingReport(
                    item.initiative_id, item.programme, round_, timeline.at(start)
                )
            )
    return sorted(missing, key=lambda m: (m.programme, m.round, m.initiative_id))


def without_tovholder(
    initiatives: Iterable[Initiative], reports: Iterable[StatusReport]
) -> list[Initiative]:
    """Open initiatives with nobody in charge now."""
    all_reports = list(reports)
    current = current_reports(all_reports)
    result = []
    for item in initiatives:
        own = [r for r in all_reports if r.initiative_id == item.initiative_id]
        timeline = tovholder_timeline(
            item.initiative_id, item.tovholdere, item.since, own
        )
        if timeline.current():
            continue
        if _closed_before(current, item.initiative_id, "9999-99"):
            continue
        result.append(item)
    return result
