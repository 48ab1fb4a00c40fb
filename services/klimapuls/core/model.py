"""The domain model: frozen records, no behaviour that touches I/O.

Emissions are carried as `float` tonnes CO2e on purpose: the accounts are
estimates with three to four significant digits, so binary floating point loses
nothing that matters, and the target math stays plain arithmetic. The database
stores `numeric` so nothing is rounded at rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

__all__ = [
    "DENMARK_CODE",
    "INDICATOR_UNITS",
    "LOWER_IS_BETTER",
    "MOVIA_CODE",
    "REGION_CODE",
    "TONNES_CO2E",
    "Co2Account",
    "Coverage",
    "Progress",
    "Status",
    "Target",
]

#: Scope code of Region Hovedstaden (the regional code used by Danmarks Statistik).
REGION_CODE = "1084"
#: Scope code of Denmark.
DENMARK_CODE = "DK"
#: Scope code of Movia, the regional transport company (an operator scope).
MOVIA_CODE = "movia"
#: The unit of every emission figure.
TONNES_CO2E = "t CO2e"

Status = Literal["no_data", "achieved", "on_track", "at_risk", "off_track"]


@dataclass(frozen=True)
class Co2Account:
    """One figure of a municipality's CO2 account, as of one vintage."""

    event_id: str
    municipality_code: str
    year: int
    sector: str
    tonnes_co2e: float
    vintage: date
    source: str
    reported_at: datetime
    subsector: str | None = None
    producer: str = field(default="", compare=False)

    @property
    def slot(self) -> tuple[str, int, str, str, date]:
        """What this figure competes for: one subsector of one vintage.

        Reports of one slot restate each other by `rank`; a newer vintage is
        another slot, and the newest vintage counts
        (`klimapuls.core.accounts.current_figures`).
        """
        return (
            self.municipality_code,
            self.year,
            self.sector,
            self.subsector or "",
            self.vintage,
        )

    @property
    def rank(self) -> tuple[datetime, str]:
        """Order within a slot: the latest `reported_at` counts (then event id)."""
        return (self.reported_at, self.event_id)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Co2Account:
        """Build from a validated `co2_account.v1` event."""
        return cls(
            producer=event.get("producer") or "",
            event_id=event["event_id"],
            municipality_code=event["municipality_code"],
            year=event["year"],
            sector=event["sector"],
            subsector=event.get("subsector"),
            tonnes_co2e=float(event["tonnes_co2e"]),
            vintage=date.fromisoformat(event["vintage"]),
            source=event["source"],
            reported_at=datetime.fromisoformat(event["reported_at"]),
        )


@dataclass(frozen=True)
class Target:
    """One version of a target: where an indicator of a scope must be by a year.

    Emission targets give `reduction_pct` (85 for -85 %, 100 for net zero);
    share and count targets give `target_value` (100 for 100 %) or
    `increase_pct` (20 for +20 %). `target_year` is None when the decision
    names no deadline ("no date stated"): such a target has no path.
    """

    target_id: str
    version: int
    scope: str
    indicator: str
    target_year: int | None
    baseline_year: int | None = None
    baseline_value: float | None = None
    reduction_pct: float | None = None
    increase_pct: float | None = None
    target_value: float | None = None
    name: str = ""
    source: str = ""
    unit: str = TONNES_CO2E
    #: When this version was reported (known-on views pick the versions
    #: known then); None for a version built without one.
    reported_at: datetime | None = field(default=None, compare=False)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Target:
        """Build from a validated `target.v1` event."""

        def _float(key: str) -> float | None:
            value = event.get(key)
            return None if value is None else float(value)

        return cls(
            target_id=event["target_id"],
            version=event["version"],
            scope=event["scope"],
            indicator=event["indicator"],
            target_year=event.get("target_year"),
            baseline_year=event.get("baseline_year"),
            baseline_value=_float("baseline_value"),
            reduction_pct=_float("reduction_pct"),
            increase_pct=_float("increase_pct"),
            target_value=_float("target_value"),
            name=event.get("name") or "",
            source=event.get("source") or "",
            unit=INDICATOR_UNITS.get(event["indicator"], ""),
            reported_at=datetime.fromisoformat(event["reported_at"].upper())
            if event.get("reported_at")
            else None,
        )

    @property
    def rising(self) -> bool:
        """Whether the indicator must rise to the goal (shares, counts).

        A `reduction_pct` always means "lower is better" and an `increase_pct`
        "higher is better"; a bare `target_value` follows the indicator.
        """
        if self.reduction_pct is not None:
            return False
        if self.increase_pct is not None:
            return True
        return self.indicator not in LOWER_IS_BETTER


#: The unit each indicator is measured in (the `target.v1` indicator enum).
INDICATOR_UNITS: dict[str, str] = {
    "co2e_total": TONNES_CO2E,
    "fossil_free_bus_share": "%",
    "zero_emission_bus_share": "%",
    "sustainable_trip_share": "%",
    "bike_trips": "trips",
    # Share of 16-24 year olds going to education by public transport, bike
    # or carpool.
    "youth_green_commute_share": "%",
    # Share of the scope's municipalities with a finished DK2020 climate plan.
    "climate_plan_share": "%",
    # Use of primary raw materials (tonnes).
    "primary_raw_material_use": "t",
    # Share of drinking water protected against chlorinated solvents.
    "drinking_water_protected_share": "%",
}

#: Indicators whose targets are reached by going down (all others go up).
LOWER_IS_BETTER: frozenset[str] = frozenset({"co2e_total", "primary_raw_material_use"})


@dataclass(frozen=True)
class Coverage:
    """How many of the expected reporters reported in a year."""

    year: int | None
    reported: int
    expected: int

    @property
    def complete(self) -> bool:
        """Whether every expected reporter reported."""
        return self.reported >= self.expected

    def as_json(self) -> dict[str, Any]:
        """`{"year", "reported", "expected"}`."""
        return {
            "year": self.year,
            "reported": self.reported,
            "expected": self.expected,
        }


@dataclass(frozen=True)
class Progress:
    """Where a target stands: the numbers behind its status on one date."""

    target_id: str
    scope: str
    version: int
    indicator: str
    unit: str
    baseline_year: int | None
    baseline_value: float | None
    target_year: int | None
    target_value: float | None
    latest_year: int | None
    latest_value: float | None
    reduction_achieved_pct: float | None
    path_value: float | None
    gap_to_path: float | None
    forecast_value: float | None
    required_annual_reduction: float | None
    status: Status
    stale: bool
    coverage: Coverage
    as_of: date
    name: str = ""
    counted_years: tuple[int, ...] = field(default=())
    coverage_by_year: tuple[Coverage, ...] = field(default=())

    @property
    def goal_achieved_pct(self) -> float | None:
        """Share of the way from the baseline to the goal covered, in percent.

        Reads the same for falling and rising targets: 0 at the baseline, 100
        at the goal, negative when the figure moved away from the goal.
        (`reduction_achieved_pct` is kept for existing readers; it is the fall
        since the baseline, which is negative for a rising target.)
        """
        base, goal, latest = self.baseline_value, self.target_value, self.latest_value
        if base is None or goal is None or latest is None or goal == base:
            return None
        return 100.0 * (latest - base) / (goal - base)

    @property
    def required_annual_change(self) -> float | None:
        """Change a year still needed to reach the goal by the deadline.

        Signed in the target's unit: negative for a figure that must fall
        (tonnes), positive for one that must rise (a share); 0 once the goal
        is reached. (`required_annual_reduction` is kept for existing
        readers.)
        """
        goal, latest = self.target_value, self.latest_value
        year, deadline = self.latest_year, self.target_year
        if goal is None or latest is None or year is None or deadline is None:
            return None
        if deadline <= year:
            return None
        if self.status == "achieved":
            return 0.0
        return (goal - latest) / (deadline - year)

    def as_json(self) -> dict[str, Any]:
        """The public JSON shape (`klimapuls progress --json`)."""
        return {
            "target_id": self.target_id,
            "name": self.name,
            "scope": self.scope,
            "version": self.version,
            "indicator": self.indicator,
            "unit": self.unit,
            "baseline_year": self.baseline_year,
            "baseline_value": self.baseline_value,
            "target_year": self.target_year,
            "target_value": self.target_value,
            "latest_year": self.latest_year,
            "latest_value": self.latest_value,
            "reduction_achieved_pct": self.reduction_achieved_pct,
            "path_value": self.path_value,
            "gap_to_path": self.gap_to_path,
            "forecast_value": self.forecast_value,
            "required_annual_reduction": self.required_annual_reduction,
            "goal_achieved_pct": self.goal_achieved_pct,
            "required_annual_change": self.required_annual_change,
            "status": self.status,
            "stale": self.stale,
            "coverage": self.coverage.as_json(),
            "coverage_by_year": [c.as_json() for c in self.coverage_by_year],
            "as_of": self.as_of.isoformat(),
        }
