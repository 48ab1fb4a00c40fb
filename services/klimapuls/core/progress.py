"""Progress of every target from its inputs: the one implementation for all callers.

The CO2 service (on rows from the database), `klimapuls progress` (database
mode, on the same rows) and `klimapuls progress --offline` (on JSONL event
files) all end here, so the same events give the same numbers everywhere:

1. Targets: the newest version of every target counts (`current_targets`);
   older versions stay as history.
2. Series: E(t) per (indicator, measured scope). Emissions come from CO2
   account figures (`klimapuls.core.accounts`: newest vintage per
   municipality, year and sector; the region counts only complete years).
   `DK` is measured against the regional series (a reference line).
3. `klimapuls.core.targets.evaluate` on each target and its series, at the
   as-of date.

`EventFold` does steps 1-2 on events, with the rules the services apply when
they store them: an event id reused with other content, or a target version
taken by another event, is rejected; a duplicate counts once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from klimapuls.core.accounts import (
    YearValue,
    current_figures,
    emission_series,
    measured_scope,
    municipality_totals,
)
from klimapuls.core.errors import EventValidationError, FieldIssue
from klimapuls.core.model import REGION_CODE, Co2Account, Progress, Target
from klimapuls.core.reference import municipality_codes, seed_target_events
from klimapuls.core.targets import evaluate
from klimapuls.core.validation import (
    EVENT_KINDS,
    parse_json,
    preview,
    validate_event,
)

__all__ = [
    "EMISSION_INDICATOR",
    "EventFold",
    "InputLine",
    "ProgressInputs",
    "SeriesKey",
    "current_targets",
    "emission_series_by_scope",
    "evaluate_targets",
    "kind_of",
    "read_jsonl",
    "series_key",
]

#: The indicator computed from CO2 accounts.
EMISSION_INDICATOR = "co2e_total"

#: (indicator, measured scope): which series a target is evaluated against.
SeriesKey = tuple[str, str]
Series = Mapping[int, YearValue]


def current_targets(targets: Iterable[Target]) -> list[Target]:
    """The newest version of every target, by target id."""
    newest: dict[str, Target] = {}
    for target in targets:
        seen = newest.get(target.target_id)
        if seen is None or target.version > seen.version:
            newest[target.target_id] = target
    return [newest[t] for t in sorted(newest)]


def series_key(target: Target) -> SeriesKey:
    """The series `target` is measured against (`DK` uses the region's)."""
    return (target.indicator, measured_scope(target.scope))


def emission_series_by_scope(
    totals: Mapping[tuple[str, int], float], codes: Iterable[str] | None = None
) -> dict[str, dict[int, YearValue]]:
    """E(t) of the region and of every municipality that has figures."""
    codes = tuple(codes) if codes is not None else municipality_codes()
    return {
        scope: emission_series(totals, scope, codes)
        for scope in sorted({REGION_CODE, *(code for code, _ in totals)})
    }


def evaluate_targets(
    targets: Iterable[Target],
    series: Mapping[SeriesKey, Series],
    as_of: date,
    indicators: Collection[str] | None = None,
) -> list[Progress]:
    """Progress of the newest version of every target (of `indicators`, if given).

    A target whose series is unknown is evaluated on an empty series, so it
    shows `no_data` rather than disappearing.
    """
    return [
        evaluate(target, series.get(series_key(target), {}), as_of)
        for target in current_targets(targets)
        if indicators is None or target.indicator in indicators
    ]


@dataclass
class ProgressInputs:
    """Everything progress is computed from: target versions and series."""

    targets: list[Target]
    series: dict[SeriesKey, dict[int, YearValue]]

    def evaluate(
        self, as_of: date, indicators: Collection[str] | None = None
    ) -> list[Progress]:
        """`evaluate_targets` on these inputs."""
        return evaluate_targets(self.targets, self.series, as_of, indicators)


def _digest(event: Mapping[str, Any]) -> str:
    # The same canonical form as the repositories use to spot a reused id.
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class EventFold:
    """Folds validated `co2_account` and `target` events into progress inputs.

    Starts with the seed targets (as the database does after `db upgrade`)
    unless `seed_targets` is False. Other event families are counted in
    `ignored` (their series are computed by their own services).
    """

    seed_targets: bool = True
    accounts: dict[str, tuple[str, Co2Account]] = field(default_factory=dict)
    targets: dict[tuple[str, int], tuple[str, str, Target]] = field(
        default_factory=dict
    )
    ignored: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seed_targets:
            for event in seed_target_events():
                self.add("target", validate_event("target", event))

    def add(self, kind: str, event: dict[str, Any]) -> None:
        """Fold one validated event; raises `EventValidationError` on a clash."""
        digest = _digest(event)
        event_id = event["event_id"]
        if kind == "co2_account":
            seen = self.accounts.get(event_id)
            if seen is not None and seen[0] != digest:
                raise _reused(event_id)
            self.accounts[event_id] = (digest, Co2Account.from_event(event))
        elif kind == "target":
            key = (event["target_id"], event["version"])
            taken = self.targets.get(key)
            if taken is not None:
                if taken[0] != event_id:
                    raise EventValidationError(
                        [
                            FieldIssue(
                                "version",
                                f"version {key[1]} of {key[0]!r} is already "
                                f"defined by event {taken[0]!r}: a revision "
                                "needs a new version",
                            )
                        ]
                    )
                if taken[1] != digest:
                    raise _reused(event_id)
                return
            for other_id, other_digest, _ in self.targets.values():
                if other_id == event_id and other_digest != digest:
                    raise _reused(event_id)
            self.targets[key] = (event_id, digest, Target.from_event(event))
        else:
            self.ignored[kind] = self.ignored.get(kind, 0) + 1

    def inputs(self) -> ProgressInputs:
        """The target versions and series folded so far."""
        accounts = (a for _, a in self.accounts.values())
        totals = municipality_totals(current_figures(accounts))
        series: dict[SeriesKey, dict[int, YearValue]] = {
            (EMISSION_INDICATOR, scope): values
            for scope, values in emission_series_by_scope(totals).items()
        }
        return ProgressInputs([t for _, _, t in self.targets.values()], series)


def _reused(event_id: str) -> EventValidationError:
    return EventValidationError(
        [
            FieldIssue(
                "event_id",
                f"{event_id!r} was already read with different content (a "
                "revision needs a new event_id, and a target a new version)",
            )
        ]
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


def read_jsonl(lines: Iterable[str]) -> Iterator[InputLine]:
    """Parse and validate JSONL lines of any event family (blank lines skipped)."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            parsed = parse_json(raw)
            if not isinstance(parsed, dict):
                raise EventValidationError(
                    [FieldIssue("$", "each line must be a JSON object")]
                )
            kind = kind_of(parsed)
            event = validate_event(kind, parsed)
        except EventValidationError as exc:
            yield InputLine(number, None, None, exc)
            continue
        yield InputLine(number, kind, event)
