"""Alert rules as pure functions: given the inputs and "now", what is wrong.

Every rule yields `Condition`s with a stable key `rule:subject:scope:period`
(`klimapuls.core.alert_state` turns them into alerts with a state). The
alert service (inputs loaded from the owners' tables) and `klimapuls alerts
--offline` (inputs folded from event files) call the same functions here.
Defaults of every threshold are in `AlertRules` (the README lists them):

- `target_status`: a target is `at_risk` or `off_track`, or it was
  `achieved` and no longer is (its status worsened). Severity is the status.
  An achievement counts once it held for `hold`, as a condition must before
  it fires: a status evaluated while an account upload was half-way (a
  year's newest sectors not all in) is not an achievement to lose.
- `forecast_worsened`: the forecast for the deadline got worse by more than
  `forecast_worsen_pct` % between two evaluations (the targets service logs
  an evaluation whenever the forecast moves); it holds until the forecast is
  back within that share of where it stood before. Only usable forecasts
  count (`usable_forecast`: not missing, not 0); an evaluation without one
  keeps an open worsening as it is.
  Both target rules carry the restatements that moved the target in
  `facts["restatements"]` (`restatements_of`): every figure of the target's
  series (its scope and indicator, `Restatement.feeds`) restated within
  `restatement_window` before the evaluation, as `klimapuls changes` lists
  them (`klimapuls.core.restatements.all_restatements`). The window is
  anchored on when the figures became known (`restated_at`), not on when a
  service ran, so a replay and the offline path attach the same ones; a
  notice prints those its previous notice did not carry
  (`klimapuls.core.alert_text`), i.e. the restatements since the previous
  notice, and for a first notice all within the window.
- `feed_stale`: a feed that reported before has not within its cadence: a
  municipality's yearly CO2 account (the newest year is more than
  `co2_max_lag_years` before this year), a counting site (no count for
  `site_max_silence`), an operator's fleet report (no snapshot dated within
  `fleet_max_silence`). A feed never seen is not stale.
- `missing_report`: an initiative has no report in a round of its programme
  and the round ended more than `report_grace` ago (older rounds still
  lacking one keep firing); `no_tovholder`: an open initiative has nobody in
  charge.
- `dead_letter_rate`: more than `dead_letter_max_pct` % of a producer's
  events were rejected (at least `dead_letter_min_events` events).

Inhibition: a stale feed of a scope holds back the slip alerts (the two
target rules) of the targets measured on that feed in that scope: the slip
is likely a gap in the data. The held-back condition names the feed alert
in `inhibited_by`.

Routing is decided here too (`parties`): a municipality's own target goes to
that municipality, regional, national and operator targets to the regional
coordinators (`Region Hovedstaden`), an initiative to its tovholdere (the
secretariat `Klimaalliancen` is one when it shares the role), an initiative
without a tovholder to the region and the secretariat, dead letters to the
region's operations contacts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from klimapuls.core.fleet import FleetSnapshot
from klimapuls.core.initiatives import (
    REGION_TOVHOLDER,
    SECRETARIAT_TOVHOLDER,
    Initiative,
    MissingReport,
    StatusReport,
    missing_reports,
    round_end,
    without_tovholder,
)
from klimapuls.core.messages import TargetStatusChange
from klimapuls.core.mobility import MobilityCount
from klimapuls.core.model import DENMARK_CODE, LOWER_IS_BETTER, REGION_CODE, Co2Account
from klimapuls.core.reference import municipalities
from klimapuls.core.restatements import Restatement

__all__ = [
    "CONTACT_TOPICS",
    "RULES",
    "AlertInputs",
    "AlertRules",
    "Condition",
    "DeadLetterCount",
    "FeedStatus",
    "TargetObservation",
    "alert_key",
    "conditions",
    "dead_letter_conditions",
    "feed_conditions",
    "feeds_of",
    "forecast_worsening_pct",
    "inhibit",
    "initiative_conditions",
    "observe",
    "observe_all",
    "party_of_scope",
    "producer_of",
    "restatements_of",
    "target_conditions",
    "topic_of_indicator",
    "usable_forecast",
    "vintages_by_scope",
]

RULE_TARGET_STATUS = "target_status"
RULE_FORECAST = "forecast_worsened"
RULE_FEED_STALE = "feed_stale"
RULE_MISSING_REPORT = "missing_report"
RULE_NO_TOVHOLDER = "no_tovholder"
RULE_DEAD_LETTERS = "dead_letter_rate"
#: Every rule, in the order alerts are listed.
RULES = (
    RULE_TARGET_STATUS,
    RULE_FORECAST,
    RULE_FEED_STALE,
    RULE_MISSING_REPORT,
    RULE_NO_TOVHOLDER,
    RULE_DEAD_LETTERS,
)
#: What contacts subscribe to (`all` takes every topic).
CONTACT_TOPICS = ("co2", "mobility", "fleet", "initiatives", "operations", "all")
#: Feed families and the topic their alerts go to.
FEED_CO2 = "co2_account"
FEED_SITE = "counting_site"
FEED_FLEET = "fleet_report"
_FEED_TOPIC = {FEED_CO2: "co2", FEED_SITE: "mobility", FEED_FLEET: "fleet"}
#: The period of a condition that lasts until it is resolved.
ONGOING = "-"

_WORSE_THAN_ON_TRACK = ("at_risk", "off_track")
_FLEET_INDICATORS = ("fossil_free_bus_share", "zero_emission_bus_share")
_MOBILITY_INDICATORS = ("sustainable_trip_share", "bike_trips")


@dataclass(frozen=True)
class AlertRules:
    """Thresholds and timings of the rules and the state machine (defaults)."""

    #: How long a condition must hold before it fires (no flapping).
    hold: timedelta = timedelta(hours=1)
    #: A firing alert not acknowledged for this long escalates.
    escalate_after: timedelta = timedelta(days=3)
    #: Alerts for one recipient within this window go out as one digest.
    digest_window: timedelta = timedelta(minutes=5)
    forecast_worsen_pct: float = 10.0
    co2_max_lag_years: int = 2
    site_max_silence: timedelta = timedelta(days=2)
    fleet_max_silence: timedelta = timedelta(days=45)
    dead_letter_max_pct: float = 5.0
    dead_letter_min_events: int = 20
    dead_letter_window: timedelta = timedelta(hours=24)
    #: A round's missing report fires this long after the round ended.
    report_grace: timedelta = timedelta(days=30)
    #: A target alert carries the restatements of its series known within
    #: this long before the evaluation (a yearly account's cadence).
    restatement_window: timedelta = timedelta(days=365)


def alert_key(rule: str, subject: str, scope: str, period: str) -> str:
    """The stable key of an alert: `rule:subject:scope:period`."""
    return f"{rule}:{subject}:{scope}:{period}"


@dataclass(frozen=True)
class Condition:
    """Something wrong now, with who must hear of it and the figures behind it.

    `facts` names the data the condition was computed from (latest year,
    vintage, target version, ...) and the numbers a notice shows.
    `feed` is (feed family, scope) for a stale feed, which inhibits slip
    conditions whose `measured_on` is the same pair.
    """

    rule: str
    subject: str
    scope: str
    period: str
    severity: str
    topic: str
    parties: tuple[str, ...]
    title: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    target_id: str | None = None
    initiative_id: str | None = None
    feed: tuple[str, str] | None = None
    measured_on: tuple[str, str] | None = None
    inhibited_by: str | None = None

    @property
    def key(self) -> str:
        """The alert's stable key."""
        return alert_key(self.rule, self.subject, self.scope, self.period)


# --- Routing ----------------------------------------------------------------


def _municipality_names() -> dict[str, str]:
    return {m.code: m.name for m in municipalities()}


def party_of_scope(scope: str) -> str:
    """Who answers for a scope: the municipality, else the regional coordinators."""
    return _municipality_names().get(scope, REGION_TOVHOLDER)


def topic_of_indicator(indicator: str) -> str:
    """The contact topic of a target's indicator."""
    if indicator in _FLEET_INDICATORS:
        return "fleet"
    if indicator in _MOBILITY_INDICATORS:
        return "mobility"
    return "co2"


def _feed_of_indicator(indicator: str) -> str | None:
    if indicator == "co2e_total":
        return FEED_CO2
    if indicator in _FLEET_INDICATORS:
        return FEED_FLEET
    if indicator in _MOBILITY_INDICATORS:
        return FEED_SITE
    return None


# --- Targets ----------------------------------------------------------------


def usable_forecast(value: float | None) -> float | None:
    """The forecast if a worsening can be measured from or to it, else None.

    A missing forecast (too few years) and a forecast of exactly 0 (no trend
    to extrapolate) say nothing about a worsening: a share of them is
    meaningless (a division by zero from 0).
    """
    if value is None or value == 0:
        return None
    return value


def forecast_worsening_pct(
    before: float | None, after: float | None, indicator: str, goal: float | None
) -> float:
    """By how many percent the forecast got worse (0 if not, or not comparable).

    Both forecasts must be usable (`usable_forecast`). Relative to the larger
    of the earlier forecast and the goal, so a net-zero goal (forecast near 0)
    still has a scale. Lower is better for emission indicators, higher for
    shares and counts.
    """
    before, after = usable_forecast(before), usable_forecast(after)
    if before is None or after is None:
        return 0.0
    change = after - before if indicator in LOWER_IS_BETTER else before - after
    if change <= 0:
        return 0.0
    return 100 * change / max(abs(before), abs(goal or 0.0))


@dataclass(frozen=True)
class TargetObservation:
    """What the alert rules remember of a target: its newest logged evaluation.

    `forecast_reference` is the forecast before a worsening that has not
    recovered (None: no worsening open); `lost_achievement` that the target
    was achieved (for at least the hold time) and no longer is;
    `achieved_since` when its current run of `achieved` began (None: not
    achieved, or not known: an observation stored before it was kept).
    """

    change: TargetStatusChange
    forecast_reference: float | None = None
    lost_achievement: bool = False
    achieved_since: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON form (stored by the alert service)."""
        since = self.achieved_since
        return {
            "change": self.change.as_json(),
            "forecast_reference": self.forecast_reference,
            "lost_achievement": self.lost_achievement,
            "achieved_since": since.isoformat() if since else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetObservation:
        """Read the JSON form back."""
        since = data.get("achieved_since")
        return cls(
            TargetStatusChange.from_json(json.dumps(data["change"])),
            data["forecast_reference"],
            data["lost_achievement"],
            datetime.fromisoformat(since) if since else None,
        )


def observe(
    previous: TargetObservation | None, change: TargetStatusChange, rules: AlertRules
) -> TargetObservation:
    """Fold one logged evaluation into what is remembered of its target.

    Evaluations must come in log order (`id`); an older or repeated one
    changes nothing, so replays and duplicate deliveries are harmless.
    """
    if previous is not None:
        if (
            change.id is not None
            and previous.change.id is not None
            and change.id <= previous.change.id
        ):
            return previous
        if previous.change.version != change.version:
            previous = None  # a revised target starts afresh
    share = rules.forecast_worsen_pct
    reference = None
    if previous is not None and previous.forecast_reference is not None:
        open_ = previous.forecast_reference
        # An unusable forecast (missing, 0) is nothing to compare with: the
        # open worsening stays open, and the next usable forecast is compared
        # to the same reference.
        if usable_forecast(change.forecast_value) is None or (
            forecast_worsening_pct(
                open_, change.forecast_value, change.indicator, change.target_value
            )
            > share
        ):
            reference = open_
    if reference is None:
        before = change.previous_forecast_value
        if previous is not None and before is None:
            before = previous.change.forecast_value
        moved = forecast_worsening_pct(
            before, change.forecast_value, change.indicator, change.target_value
        )
        if moved > share:
            reference = before
    lost = previous.lost_achievement if previous is not None else False
    since = None
    if change.status == "achieved":
        lost = False
        since = change.changed_at
        if previous is not None and previous.change.status == "achieved":
            since = previous.achieved_since  # the run goes on (None: not known)
    elif change.status == "no_data":
        lost = False
    elif change.previous_status == "achieved":
        lost = _achievement_held(previous, change, rules)
    return TargetObservation(change, reference, lost, since)


def _achievement_held(
    previous: TargetObservation | None, change: TargetStatusChange, rules: AlertRules
) -> bool:
    """Whether the achievement `change` ends had held for the hold time.

    Not known (no observation of it, or one stored before its start was
    kept): it counts, as before.
    """
    if previous is None or previous.achieved_since is None:
        return True
    return change.changed_at - previous.achieved_since >= rules.hold


def observe_all(
    observations: dict[str, TargetObservation],
    changes: Iterable[TargetStatusChange],
    rules: AlertRules,
) -> list[TargetObservation]:
    """Fold logged evaluations (any order, repeats allowed) into `observations`.

    Updates the mapping in place and returns the observations that changed.
    """
    touched: dict[str, TargetObservation] = {}
    for change in sorted(changes, key=lambda c: c.id or 0):
        previous = observations.get(change.target_id)
        seen = observe(previous, change, rules)
        if seen is not previous:
            observations[change.target_id] = touched[change.target_id] = seen
    return list(touched.values())


def _target_facts(
    observation: TargetObservation, vintage: date | None
) -> dict[str, Any]:
    c = observation.change
    return {
        "target_id": c.target_id,
        "name": c.name,
        "version": c.version,
        "indicator": c.indicator,
        "unit": c.unit,
        "status": c.status,
        "previous_status": c.previous_status,
        "stale": c.stale,
        "latest_year": c.latest_year,
        "latest_value": c.latest_value,
        "vintage": vintage.isoformat() if vintage else None,
        "path_value": c.path_value,
        "gap_to_path": c.gap_to_path,
        "target_year": c.target_year,
        "target_value": c.target_value,
        "forecast_value": c.forecast_value,
        "forecast_reference": observation.forecast_reference,
        "required_annual_reduction": c.required_annual_reduction,
        "evaluated_at": c.changed_at.isoformat(),
    }


def restatements_of(
    restatements: Iterable[Restatement],
    indicator: str,
    scope: str,
    now: datetime,
    rules: AlertRules,
) -> list[dict[str, Any]]:
    """The restatements of a target's series known within the window, as JSON.

    `restatements` are `all_restatements` of the facts (offline) or the
    `restatement` table the targets service writes from them (database).
    Oldest first, in the shape `klimapuls changes --json` prints.
    """
    start = now - rules.restatement_window
    chosen = sorted(
        (
            r
            for r in restatements
            if start < r.restated_at <= now and r.feeds(indicator, scope)
        ),
        key=lambda r: (r.restated_at, r.family, r.scope, r.year, r.sector, r.detail),
    )
    return [r.as_json() for r in chosen]


def target_conditions(
    observations: Iterable[TargetObservation],
    rules: AlertRules,
    vintages: Mapping[tuple[str, int], date] | None = None,
    restatements: Sequence[Restatement] = (),
    now: datetime | None = None,
) -> list[Condition]:
    """The slip conditions of every target (`target_status`, `forecast_worsened`).

    `vintages` gives the newest data vintage of (scope, year), where known;
    `restatements` the restated figures, attached as of `now` (see the module).
    """
    found: list[Condition] = []
    for obs in observations:
        c = obs.change
        vintage = None
        if vintages is not None and c.latest_year is not None:
            vintage = vintages.get((c.scope, c.latest_year))
        facts = _target_facts(obs, vintage)
        if now is not None:
            facts["restatements"] = restatements_of(
                restatements, c.indicator, c.scope, now, rules
            )
        period = str(c.target_year) if c.target_year is not None else ONGOING
        feed = _feed_of_indicator(c.indicator)
        common = {
            "subject": c.target_id,
            "scope": c.scope,
            "period": period,
            "topic": topic_of_indicator(c.indicator),
            "parties": (party_of_scope(c.scope),),
            "facts": facts,
            "target_id": c.target_id,
            "measured_on": (feed, c.scope) if feed else None,
        }
        label = c.name or c.target_id
        if c.status in _WORSE_THAN_ON_TRACK or obs.lost_achievement:
            found.append(
                Condition(
                    rule=RULE_TARGET_STATUS,
                    severity=c.status,
                    title=f"Klimamål skrider: {label}",
                    **common,  # type: ignore[arg-type]
                )
            )
        if obs.forecast_reference is not None:
            found.append(
                Condition(
                    rule=RULE_FORECAST,
                    severity="worsened",
                    title=f"Prognosen forværret: {label}",
                    **common,  # type: ignore[arg-type]
                )
            )
    return found


# --- Feeds ------------------------------------------------------------------


@dataclass(frozen=True)
class FeedStatus:
    """When a feed last reported: a municipality's CO2 account, a site, a fleet.

    `last_year` is the newest account year (CO2 accounts); `last_seen` the
    newest vintage, count end or snapshot date.
    """

    family: str
    feed_id: str
    scope: str
    last_seen: datetime
    last_year: int | None = None


def _feed_stale(feed: FeedStatus, now: datetime, rules: AlertRules) -> bool:
    if feed.family == FEED_CO2:
        year = feed.last_year if feed.last_year is not None else feed.last_seen.year
        return year < now.year - rules.co2_max_lag_years
    silence = rules.site_max_silence
    if feed.family == FEED_FLEET:
        silence = rules.fleet_max_silence
    return now - feed.last_seen > silence


_FEED_TITLE = {
    FEED_CO2: "CO2-regnskabet er ikke opdateret",
    FEED_SITE: "Tællestedet har ikke leveret tællinger",
    FEED_FLEET: "Operatøren har ikke indberettet flåden",
}


def feed_conditions(
    feeds: Iterable[FeedStatus], now: datetime, rules: AlertRules
) -> list[Condition]:
    """A `feed_stale` condition for every feed silent beyond its cadence."""
    found = []
    for feed in sorted(feeds, key=lambda f: (f.family, f.feed_id)):
        if not _feed_stale(feed, now, rules):
            continue
        where = party_of_scope(feed.scope)
        found.append(
            Condition(
                rule=RULE_FEED_STALE,
                subject=f"{feed.family}/{feed.feed_id}",
                scope=feed.scope,
                period=ONGOING,
                severity="stale",
                topic=_FEED_TOPIC[feed.family],
                parties=(where,),
                title=f"{_FEED_TITLE[feed.family]}: {feed.feed_id} ({where})",
                facts={
                    "family": feed.family,
                    "feed_id": feed.feed_id,
                    "last_seen": feed.last_seen.isoformat(),
                    "last_year": feed.last_year,
                },
                feed=(feed.family, feed.scope),
            )
        )
    return found


# --- Initiatives --------------------------------------------------------------


def initiative_conditions(
    initiatives: Sequence[Initiative],
    missing: Iterable[MissingReport],
    without: Iterable[Initiative],
    now: datetime,
    rules: AlertRules,
) -> list[Condition]:
    """Missing reports past the grace after their round; initiatives unattended.

    A round's report is missing once the round ended `report_grace` ago; a
    round that still lacks it keeps firing, newest or not.
    """
    names = {i.initiative_id: i.name for i in initiatives}
    found = []
    for m in missing:
        due = _utc(datetime.combine(round_end(m.round), datetime.min.time()))
        if now < due + rules.report_grace:
            continue
        name = names.get(m.initiative_id, m.initiative_id)
        found.append(
            Condition(
                rule=RULE_MISSING_REPORT,
                subject=m.initiative_id,
                scope=m.programme,
                period=m.round,
                severity="missing",
                topic="initiatives",
                parties=m.tovholdere or (REGION_TOVHOLDER,),
                title=f"Statusrapport mangler: {name} (runde {m.round})",
                facts={
                    "initiative_id": m.initiative_id,
                    "name": name,
                    "programme": m.programme,
                    "round": m.round,
                    "tovholdere": list(m.tovholdere),
                },
                initiative_id=m.initiative_id,
            )
        )
    for item in without:
        found.append(
            Condition(
                rule=RULE_NO_TOVHOLDER,
                subject=item.initiative_id,
                scope=item.programme,
                period=ONGOING,
                severity="unattended",
                topic="initiatives",
                parties=(REGION_TOVHOLDER, SECRETARIAT_TOVHOLDER),
                title=f"Initiativ uden tovholder: {item.name}",
                facts={
                    "initiative_id": item.initiative_id,
                    "name": item.name,
                    "programme": item.programme,
                },
                initiative_id=item.initiative_id,
            )
        )
    return found


# --- Dead letters -------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterCount:
    """A producer's accepted and rejected events in the rule's window."""

    producer: str
    accepted: int
    rejected: int

    @property
    def rate_pct(self) -> float:
        """Rejected events as a share of all, in percent."""
        total = self.accepted + self.rejected
        return 100 * self.rejected / total if total else 0.0


#: The producer of a dead letter whose payload names none.
UNKNOWN_PRODUCER = "ukendt"


def producer_of(payload: str | bytes) -> str:
    """The `producer` a rejected message names, or `ukendt`."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return UNKNOWN_PRODUCER
    name = body.get("producer") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name else UNKNOWN_PRODUCER


def dead_letter_conditions(
    counts: Iterable[DeadLetterCount], rules: AlertRules
) -> list[Condition]:
    """A `dead_letter_rate` condition for every producer past the threshold."""
    found = []
    for count in sorted(counts, key=lambda c: c.producer):
        total = count.accepted + count.rejected
        if total < rules.dead_letter_min_events:
            continue
        if count.rate_pct <= rules.dead_letter_max_pct:
            continue
        found.append(
            Condition(
                rule=RULE_DEAD_LETTERS,
                subject=count.producer,
                scope=ONGOING,
                period=ONGOING,
                severity="high",
                topic="operations",
                parties=(REGION_TOVHOLDER,),
                title=f"Mange afviste hændelser fra {count.producer}",
                facts={
                    "producer": count.producer,
                    "accepted": count.accepted,
                    "rejected": count.rejected,
                    "rate_pct": round(count.rate_pct, 2),
                    "threshold_pct": rules.dead_letter_max_pct,
                },
            )
        )
    return found


# --- Inhibition ---------------------------------------------------------------


def inhibit(conditions: Sequence[Condition]) -> list[Condition]:
    """Mark slip conditions held back by a stale feed of what they measure."""
    stale = {c.feed: c.key for c in conditions if c.feed is not None}
    marked = [
        replace(c, inhibited_by=stale[c.measured_on])
        if c.measured_on is not None and c.measured_on in stale
        else c
        for c in conditions
    ]
    held: dict[str, list[str]] = {}
    for c in marked:
        if c.inhibited_by is not None:
            held.setdefault(c.inhibited_by, []).append(c.key)
    # The feed alert says what it holds back, too.
    return [
        replace(c, facts={**c.facts, "holds_back": sorted(held[c.key])})
        if c.key in held
        else c
        for c in marked
    ]


# --- All rules at once --------------------------------------------------------


@dataclass(frozen=True)
class AlertInputs:
    """Everything the rules read, from the database or folded from files.

    `vintages` are (municipality, year, newest vintage) of the accounts;
    `restatements` every restated figure (`all_restatements`).
    """

    observations: Sequence[TargetObservation] = ()
    feeds: Sequence[FeedStatus] = ()
    initiatives: Sequence[Initiative] = ()
    reports: Sequence[StatusReport] = ()
    dead_letters: Sequence[DeadLetterCount] = ()
    vintages: Sequence[tuple[str, int, date]] = ()
    restatements: Sequence[Restatement] = ()


def vintages_by_scope(
    rows: Iterable[tuple[str, int, date]],
) -> dict[tuple[str, int], date]:
    """Newest vintage of each (scope, year): municipalities, the region, DK."""
    found: dict[tuple[str, int], date] = {}
    for code, year, vintage in rows:
        for scope in (code, REGION_CODE, DENMARK_CODE):
            seen = found.get((scope, year))
            if seen is None or vintage > seen:
                found[(scope, year)] = vintage
    return found


def feeds_of(
    accounts: Iterable[Co2Account],
    counts: Iterable[MobilityCount],
    fleet: Iterable[FleetSnapshot],
) -> list[FeedStatus]:
    """When every feed last reported, from the facts themselves (offline)."""
    co2: dict[str, tuple[int, date]] = {}
    for a in accounts:
        year, vintage = co2.get(a.municipality_code, (a.year, a.vintage))
        co2[a.municipality_code] = (max(year, a.year), max(vintage, a.vintage))
    sites: dict[str, tuple[str, datetime]] = {}
    for c in counts:
        code, seen = sites.get(c.site_id, (c.municipality_code, c.interval_end))
        sites[c.site_id] = (min(code, c.municipality_code), max(seen, c.interval_end))
    operators: dict[str, date] = {}
    for s in fleet:
        operators[s.operator] = max(operators.get(s.operator, s.date), s.date)
    midnight = datetime.min.time()
    return [
        *(
            FeedStatus(FEED_CO2, code, code, _utc(datetime.combine(v, midnight)), y)
            for code, (y, v) in co2.items()
        ),
        *(
            FeedStatus(FEED_SITE, site, code, seen)
            for site, (code, seen) in sites.items()
        ),
        *(
            FeedStatus(FEED_FLEET, op, op, _utc(datetime.combine(day, midnight)))
            for op, day in operators.items()
        ),
    ]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def conditions(
    inputs: AlertInputs, now: datetime, rules: AlertRules
) -> list[Condition]:
    """Every condition of every rule, with inhibition applied."""
    listed = list(inputs.initiatives)
    reports = list(inputs.reports)
    found = [
        *target_conditions(
            inputs.observations,
            rules,
            vintages_by_scope(inputs.vintages),
            inputs.restatements,
            now,
        ),
        *feed_conditions(inputs.feeds, now, rules),
        *initiative_conditions(
            listed,
            missing_reports(listed, reports),
            without_tovholder(listed, reports),
            now,
            rules,
        ),
        *dead_letter_conditions(inputs.dead_letters, rules),
    ]
    return inhibit(found)
