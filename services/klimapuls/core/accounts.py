"""From CO2 account figures to emission series E(t), with restatements.

The rules, used alike by the streaming service (on rows from the database)
and by `klimapuls progress --offline` (on events from files):

- A (municipality, year, sector) is restated by a newer `vintage`. Only the
  newest vintage counts; older vintages are kept but ignored.
- Within that vintage a sector may be split into subsectors; the sector's
  figure is their sum. The same (subsector, vintage) sent twice with different
  event ids counts once: the later `reported_at` wins (`Co2Account.slot`
  and `.rank`, which `klimapuls.core.identity` also uses).
- E(t) for a municipality is the sum over its sectors. For the region, E(t)
  is the sum over all 29 municipalities, and a year counts only when all 29
  reported ("complete"); coverage is kept for every year.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from klimapuls.core.model import DENMARK_CODE, REGION_CODE, Co2Account, Coverage

__all__ = [
    "YearValue",
    "current_figures",
    "emission_series",
    "measured_scope",
    "municipality_totals",
]

SectorKey = tuple[str, int, str]  # municipality, year, sector


@dataclass(frozen=True)
class YearValue:
    """E(t) of a scope in one year, with who reported."""

    year: int
    value: float
    coverage: Coverage

    @property
    def counted(self) -> bool:
        """Whether this year counts for targets (every reporter reported)."""
        return self.coverage.complete


def current_figures(accounts: Iterable[Co2Account]) -> dict[SectorKey, float]:
    """The figure of every (municipality, year, sector) at its newest vintage."""
    newest: dict[SectorKey, date] = {}  # the newest vintage seen
    parts: dict[SectorKey, dict[str, Co2Account]] = {}
    for account in accounts:
        key = (account.municipality_code, account.year, account.sector)
        vintage = account.vintage
        best = newest.get(key)
        if best is None or vintage > best:
            newest[key] = vintage
            by_part = parts[key] = {}
        elif vintage < best:
            continue
        else:
            by_part = parts[key]
        part = account.subsector or ""
        seen = by_part.get(part)
        if seen is None or account.rank > seen.rank:
            by_part[part] = account
    # Sums run in one order (sorted keys), so the database and the files,
    # which deliver figures in different orders, give the same floats.
    return {
        key: sum([by_part[part].tonnes_co2e for part in sorted(by_part)])
        for key, by_part in sorted(parts.items())
    }


def municipality_totals(
    figures: Mapping[SectorKey, float],
) -> dict[tuple[str, int], float]:
    """E(t) per (municipality, year): the sum over sectors."""
    totals: dict[tuple[str, int], float] = defaultdict(float)
    for (code, year, _sector), tonnes in sorted(figures.items()):
        totals[(code, year)] += tonnes
    return dict(totals)


def measured_scope(scope: str) -> str:
    """The scope whose series a target of `scope` is measured against.

    Klimapuls holds no national account, so the national target (`DK`) is a
    reference line: it is drawn against the regional series, to show where the
    region stands relative to the Climate Act's path.
    """
    return REGION_CODE if scope == DENMARK_CODE else scope


def emission_series(
    totals: Mapping[tuple[str, int], float],
    scope: str,
    municipality_codes: Iterable[str],
) -> dict[int, YearValue]:
    """E(t) of `scope` (a municipality code, or the region) by year."""
    scope = measured_scope(scope)
    if scope != REGION_CODE:
        return {
            year: YearValue(year, value, Coverage(year, 1, 1))
            for (code, year), value in sorted(totals.items())
            if code == scope
        }
    expected = set(municipality_codes)
    by_year: dict[int, float] = defaultdict(float)
    reporters: dict[int, set[str]] = defaultdict(set)
    for (code, year), value in sorted(totals.items()):
        if code in expected:
            by_year[year] += value
            reporters[year].add(code)
    return {
        year: YearValue(
            year, value, Coverage(year, len(reporters[year]), len(expected))
        )
        for year, value in sorted(by_year.items())
    }
