"""What was known on a date: the facts behind a known-on view.

Klimapuls keeps every report (restatements add rows), so any earlier view
can be rebuilt. "Known on DATE" means reported by the end of that day,
Danish time (`known_by`):

- a CO2 account figure whose `vintage` is on or before DATE and whose
  `reported_at` is before the end of DATE;
- a fleet snapshot, a count and a target version whose `reported_at` is
  before the end of DATE; among the counts of one key known then, the
  current one is chosen by the usual rank (`klimapuls.core.mobility`);
- target versions: the newest version known then counts.

`known_on` cuts `Facts` to that; `klimapuls.core.progress.evaluate_all` then
evaluates them as of any date (`--as-of`: which years count; `--known-on`:
which figures were known).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from klimapuls.core.errors import KlimapulsError
from klimapuls.core.mobility import LOCAL_TIME, restated_counts, site_years
from klimapuls.core.model import Co2Account
from klimapuls.core.progress import Facts, MobilityYears

__all__ = [
    "KnownOnUnavailableError",
    "account_known",
    "known_by",
    "known_on",
    "was_known",
]


class KnownOnUnavailableError(KlimapulsError):
    """Facts hold neither the counts nor the trips known on the date asked."""


#: The end of the last day a date can name (`date.max`): later than any report.
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def known_by(day: date) -> datetime:
    """The end of `day` in Danish time: what was reported before it was known.

    The last date there is (9999-12-31, "everything known") ends at the
    largest time there is, so a far-future date never overflows.
    """
    if day >= date.max - timedelta(days=1):
        return _END_OF_TIME
    following = day + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=LOCAL_TIME)


def was_known(reported_at: datetime | None, day: date) -> bool:
    """Whether a report of `reported_at` was known on `day` (None: always)."""
    return reported_at is None or reported_at < known_by(day)


def account_known(account: Co2Account, day: date) -> bool:
    """Whether a CO2 figure was known on `day` (its vintage and its report)."""
    return account.vintage <= day and was_known(account.reported_at, day)


def known_on(facts: Facts, day: date) -> Facts:
    """`facts` as they were known on `day`.

    Trips come from the counts when `facts` holds them, else from the trips
    a loader aggregated for `day` (`Facts.known_trips`); without either,
    `KnownOnUnavailableError`.
    """
    cutoff = known_by(day)
    restated = tuple(c for c in facts.restated_counts if c.reported_at < cutoff)
    counts = None
    if facts.counts is not None:
        counts = tuple(c for c in facts.counts if c.reported_at < cutoff)
        mobility = MobilityYears.of_sites(site_years(counts))
        restated = tuple(restated_counts(counts))
    elif day in facts.known_trips:
        mobility = facts.known_trips[day]
    else:
        raise KnownOnUnavailableError(
            f"the trips known on {day.isoformat()} were not loaded"
        )
    return replace(
        facts,
        targets=tuple(t for t in facts.targets if was_known(t.reported_at, day)),
        accounts=tuple(a for a in facts.accounts if account_known(a, day)),
        fleet=tuple(s for s in facts.fleet if s.reported_at < cutoff),
        trips=mobility.trips,
        bike_sites=mobility.bike_sites,
        counts=counts,
        restated_counts=restated,
        known_trips={},
    )
