"""The HTML report: one self-contained page from `Facts`.

The page shows the region's overview, or one municipality.

Numbers come from the core alone (`core.progress.evaluate_all` and its
`MeasuredSeries`, `core.targets.trajectory` for the paths), so the report
shows what `klimapuls progress` and the boards show, whether the facts were
loaded from the database or folded from event files. The page needs nothing
from the network: styles are inline, charts are SVG drawn here, and a
Content-Security-Policy forbids every outside resource.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from html import escape
from importlib import resources

from klimapuls.core.accounts import YearValue, current_figures
from klimapuls.core.alert_text import danish_number
from klimapuls.core.initiatives import reference_initiatives
from klimapuls.core.model import REGION_CODE, TONNES_CO2E, Progress
from klimapuls.core.progress import Facts, MeasuredSeries, evaluate_all
from klimapuls.core.reference import municipalities
from klimapuls.core.restatements import Restatement, all_restatements
from klimapuls.core.targets import trajectory
from klimapuls.report.svg import Bars, Line, bar_chart, line_chart

__all__ = ["STATUS_DA", "ReportInput", "render_report"]

#: Danish status labels and their colours (as on the boards).
STATUS_DA = {
    "off_track": ("ude af kurs", "#c62828"),
    "at_risk": ("i risiko", "#f9a825"),
    "on_track": ("på kurs", "#2e7d32"),
    "achieved": ("nået", "#1b5e20"),
    "no_data": ("ingen data", "#757575"),
}
_STATUS_ORDER = ("off_track", "at_risk", "no_data", "on_track", "achieved")
_SECTORS = (
    ("energy", "Energi"),
    ("transport", "Transport"),
    ("agriculture", "Landbrug"),
    ("industry", "Industri"),
    ("waste", "Affald"),
    ("other", "Andet"),
)
_MODES = (
    ("car", "Bil"),
    ("bike", "Cykel"),
    ("walk", "Gang"),
    ("bus", "Bus"),
    ("train", "Tog"),
    ("metro", "Metro"),
)
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class ReportInput:
    """What a report is made from, and where it came from (shown on the page)."""

    facts: Facts
    as_of: date
    source: str
    municipality: str | None = None


def _is_synthetic(facts: Facts) -> bool:
    texts = [a.source for a in facts.accounts] + [t.source for t in facts.targets]
    return any("synthetic" in t.lower() for t in texts) or bool(facts.trips)


def _kt(value: float) -> str:
    return f"{value / 1000:,.0f} kt".replace(",", ".")


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == TONNES_CO2E:
        return _kt(value)
    if unit == "%":
        return f"{value:.1f} %".replace(".", ",")
    return f"{value:,.0f}".replace(",", ".")


def _status_table(progress: Iterable[Progress]) -> str:
    rows = sorted(progress, key=lambda p: (_STATUS_ORDER.index(p.status), p.target_id))
    body = []
    for p in rows:
        text, colour = STATUS_DA[p.status]
        stale = " (forældet)" if p.stale else ""
        body.append(
            "<tr>"
            f"<td>{escape(p.target_id)}</td><td>{escape(p.name)}</td>"
            f"<td>{escape(p.scope)}</td>"
            f'<td><span class="s" style="background:{colour}">{text}</span>'
            f"{stale}</td>"
            f"<td>{p.latest_year or '—'}</td>"
            f"<td class='n'>{_value(p.latest_value, p.unit)}</td>"
            f"<td class='n'>{_value(p.path_value, p.unit)}</td>"
            f"<td class='n'>{_value(p.forecast_value, p.unit)}</td>"
            f"<td>{p.target_year or 'ingen dato'}</td>"
            "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Mål",
            "Navn",
            "Område",
            "Status",
            "Seneste år",
            "Seneste værdi",
            "Sti",
            "Prognose i målår",
            "Målår",
        )
    )
    return (
        f'<table class="status"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _emission_lines(
    series: dict[int, YearValue], targets: Sequence[Progress], label: str
) -> list[Line]:
    counted = tuple((float(y), v.value) for y, v in sorted(series.items()) if v.counted)
    lines = [Line(label, counted)]
    for p in targets:
        path = tuple((float(y), v) for y, v in trajectory(p))
        lines.append(Line(f"Målsti: {p.name or p.target_id}", path, dashed=True))
        if p.latest_year and p.forecast_value is not None and p.target_year:
            assert p.latest_value is not None  # noqa: S101 - set with latest_year
            lines.append(
                Line(
                    f"Prognose: {p.name or p.target_id}",
                    (
                        (p.latest_year, p.latest_value),
                        (p.target_year, p.forecast_value),
                    ),
                    dashed=True,
                    colour="#777777",
                )
            )
    return lines


def _sector_chart(
    facts: Facts, codes: set[str], complete_only: bool, title: str
) -> str:
    totals: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    reporters: dict[int, set[str]] = defaultdict(set)
    for (code, year, sector), tonnes in current_figures(facts.accounts).items():
        if code in codes:
            totals[year][sector] += tonnes
            reporters[year].add(code)
    years = sorted(y for y in totals if not complete_only or reporters[y] >= codes)
    layers = [
        Bars(label, tuple(totals[y].get(key, 0.0) for y in years))
        for key, label in _SECTORS
    ]
    return bar_chart(title, [str(y) for y in years], layers, "år", "t CO2e")


def _coverage(series: dict[int, YearValue]) -> tuple[str, str]:
    years = sorted(series)[-15:]
    chart = bar_chart(
        "Indberetninger pr. år (af 29 kommuner)",
        [str(y) for y in years],
        [
            Bars(
                "Indberettet",
                tuple(float(series[y].coverage.reported) for y in years),
                "#0072B2",
            ),
            Bars(
                "Mangler",
                tuple(
                    float(series[y].coverage.expected - series[y].coverage.reported)
                    for y in years
                ),
                "#D55E00",
            ),
        ],
        "år",
        "kommuner",
    )
    rows = "".join(
        f"<tr><td>{y}</td><td class='n'>{series[y].coverage.reported}</td>"
        f"<td class='n'>{series[y].coverage.expected}</td>"
        f"<td>{'komplet' if series[y].counted else 'ufuldstændig'}</td></tr>"
        for y in reversed(years)
    )
    table = (
        '<table class="coverage"><thead><tr><th>År</th><th>Indberettet</th>'
        f"<th>Forventet</th><th>Tæller</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return chart, table


def _fleet_chart(measured: MeasuredSeries, progress: Sequence[Progress]) -> str:
    shares = measured.shares().get("movia", [])

    def year_of(d: date) -> float:
        return d.year + (d.timetuple().tm_yday - 1) / 366

    lines = [
        Line(
            "Fossilfri andel",
            tuple(
                (year_of(s.date), s.fossil_free_share)
                for s in shares
                if s.fossil_free_share is not None
            ),
        ),
        Line(
            "Nulemission andel",
            tuple(
                (year_of(s.date), s.zero_emission_share)
                for s in shares
                if s.zero_emission_share is not None
            ),
        ),
    ]
    lines += [
        Line(f"Målsti: {p.name or p.target_id}", tuple(trajectory(p)), dashed=True)
        for p in progress
        if p.target_id == "movia-fossil-free-2030"
    ]
    return line_chart(
        "Movias busser: fossilfri og nulemission mod 2030", lines, "år", "% af busserne"
    )


def _trips_chart(measured: MeasuredSeries, scope: str, title: str) -> str:
    splits = sorted(
        (s for s in measured.splits() if s.scope == scope), key=lambda s: s.year
    )
    categories = [f"{s.year}{' (foreløbig)' if s.provisional else ''}" for s in splits]
    layers = [
        Bars(label, tuple(float(s.trips.get(key, 0)) for s in splits))
        for key, label in _MODES
    ]
    return bar_chart(title, categories, layers, "år", "talte ture")


#: How many restatements the page lists (newest first); the board has all.
RESTATEMENT_ROWS = 50


def _restated_value(value: float, unit: str) -> str:
    """A figure in full: restatements are often small against the total."""
    if unit == "%":
        return f"{danish_number(value, 1)} %"
    text = danish_number(value, 1 if value % 1 else 0)
    return text + (" t" if unit == TONNES_CO2E else "")


def _change(pct: float | None) -> str:
    return "—" if pct is None else f"{pct:+.1f} %".replace(".", ",")


def _restatements(facts: Facts, code: str | None) -> str:
    """The figures later reports changed (as `klimapuls changes` lists them)."""
    found: list[Restatement] = [
        r
        for r in all_restatements(facts)
        if code is None or code in (r.scope, r.municipality_code)
    ]
    if not found:
        return "<p>Ingen tal er rettet efter indberetningen.</p>"
    newest = sorted(found, key=lambda r: r.restated_at, reverse=True)
    body = []
    for r in newest[:RESTATEMENT_ROWS]:
        change = r.change_pct
        vintage = (
            f"{r.old_vintage} → {r.new_vintage}"
            if r.old_vintage != r.new_vintage
            else str(r.new_vintage or "")
        )
        what = r.sector + (f" ({r.detail})" if r.detail else "")
        body.append(
            "<tr>"
            f"<td>{r.restated_at.astimezone(UTC).isoformat()}</td>"
            f"<td>{escape(r.family)}: {escape(what)}</td>"
            f"<td>{escape(r.scope)}</td><td>{escape(r.period or str(r.year))}</td>"
            f"<td class='n'>{_restated_value(r.old_value, r.unit)}</td>"
            f"<td class='n'>{_restated_value(r.new_value, r.unit)}</td>"
            f"<td class='n'>{_change(change)}</td>"
            f"<td>{escape(vintage)}</td><td>{escape(r.producer)}</td>"
            "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Rettet (UTC)",
            "Tal",
            "Område",
            "Periode",
            "Før",
            "Efter",
            "Ændring",
            "Vintage",
            "Producent",
        )
    )
    more = (
        f"<p>{len(found) - RESTATEMENT_ROWS} ældre rettelser er udeladt; se "
        "<code>klimapuls changes</code> eller driftsboardet.</p>"
        if len(found) > RESTATEMENT_ROWS
        else ""
    )
    return (
        f'<table class="restatements"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{more}"
    )


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _overview(data: ReportInput, progress: list[Progress]) -> tuple[str, str]:
    measured = MeasuredSeries(data.facts, data.as_of)
    region = measured.emissions().get(REGION_CODE, {})
    paths = [
        p
        for p in progress
        if p.target_id
        in ("region-co2-2030", "region-neutral-2045", "dk-climate-law-2030")
    ]
    chart, coverage_table = _coverage(region)
    codes = {m.code for m in municipalities()}
    body = (
        "<h2>Udledning mod målene</h2>"
        + _figure(
            line_chart(
                "Regionens udledning mod -85 % i 2030 og netto-nul i 2045",
                _emission_lines(region, paths, "Udledning (alle 29 kommuner)"),
                "år",
                "t CO2e",
            ),
            "Kun år, hvor alle 29 kommuner har indberettet, tæller. Stierne er "
            "kernens; klimalovens -70 % er en national referencelinje.",
        )
        + _figure(
            _sector_chart(
                data.facts, codes, True, "Udledning pr. sektor (komplette år)"
            ),
            "Nyeste udgave af hver kommunes regnskab, summeret pr. sektor.",
        )
        + "<h2>Status for alle mål</h2>"
        + _status_table(progress)
        + "<h2>Dækning</h2>"
        + _figure(chart, "Kommuner med CO2-regnskab for året.")
        + coverage_table
        + "<h2>Busser og ture</h2>"
        + _figure(
            _fleet_chart(measured, progress),
            "HVO og biogas er fossilfri, men ikke nulemission.",
        )
        + _figure(
            _trips_chart(measured, REGION_CODE, "Talte ture pr. transportform"),
            "Et år tæller, når alle 12 måneder er talt; foreløbigt til 1. juni "
            "året efter.",
        )
        + "<h2>Rettelser</h2>"
        + _restatements(data.facts, None)
    )
    return "Region Hovedstaden — overblik", body


def _initiatives_table(name: str) -> str:
    rows = "".join(
        f"<tr><td>{escape(i.name)}</td><td>{escape(i.programme)}</td>"
        f"<td>{escape(', '.join(i.tovholdere))}</td></tr>"
        for i in reference_initiatives()
        if name in i.tovholdere
    )
    if not rows:
        return "<p>Kommunen er ikke tovholder på initiativer i VIP-tabellerne.</p>"
    return (
        '<table class="initiatives"><thead><tr><th>Initiativ</th><th>Program</th>'
        f"<th>Tovholdere</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _municipality(
    data: ReportInput, progress: list[Progress], code: str
) -> tuple[str, str]:
    name = next(m.name for m in municipalities() if m.code == code)
    measured = MeasuredSeries(data.facts, data.as_of)
    own = [p for p in progress if p.scope == code]
    series = measured.emissions().get(code, {})
    emission_targets = [p for p in own if p.indicator == "co2e_total"]
    body = (
        "<h2>Udledning og mål</h2>"
        + _figure(
            line_chart(
                f"{name}: udledning, målsti og prognose",
                _emission_lines(series, emission_targets, f"Udledning ({name})"),
                "år",
                "t CO2e",
            ),
            "Kommunens egne mål (DK2020) med kernens sti og trendprognose.",
        )
        + _figure(
            _sector_chart(data.facts, {code}, False, f"{name}: udledning pr. sektor"),
            "Nyeste udgave pr. år og sektor.",
        )
        + "<h2>Kommunens mål</h2>"
        + (
            _status_table(own)
            if own
            else "<p>Kommunen har ingen egne mål i Klimapuls endnu.</p>"
        )
        + "<h2>Ture</h2>"
        + _figure(
            _trips_chart(measured, code, f"{name}: talte ture pr. transportform"),
            "Foreløbige år er mærket.",
        )
        + "<h2>Initiativer med kommunen som tovholder</h2>"
        + _initiatives_table(name)
        + "<h2>Rettelser</h2>"
        + _restatements(data.facts, code)
    )
    return f"{name} ({code})", body


def render_report(data: ReportInput) -> str:
    """The whole page as one HTML string."""
    progress = evaluate_all(data.facts, data.as_of)
    if data.municipality is None:
        title, body = _overview(data, progress)
    else:
        title, body = _municipality(data, progress, data.municipality)
    style = (
        resources.files("klimapuls.report").joinpath("report.css").read_text("utf-8")
    )
    banner = (
        '<p class="synthetic">SYNTETISKE DEMO-DATA (synthetic): tallene er '
        "seedede demo-tal, ikke rigtige udledninger.</p>"
        if _is_synthetic(data.facts)
        else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="da"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Klimapuls — {escape(title)}</title><style>{style}</style></head>"
        f"<body><header><h1>Klimapuls — {escape(title)}</h1>"
        f"<p>Status pr. {data.as_of.isoformat()} · kilde: {escape(data.source)}</p>"
        f"{banner}</header><main>{body}</main>"
        "<footer>Genereret af <code>klimapuls report</code>; samme tal som "
        "<code>klimapuls progress</code>.</footer></body></html>\n"
    )
