"""Rich rendering shared by CLI commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from klimapuls.core.model import TONNES_CO2E

__all__ = ["STATUS_STYLE", "fmt_value", "progress_table"]

STATUS_STYLE = {
    "achieved": "bold green",
    "on_track": "green",
    "at_risk": "yellow",
    "off_track": "bold red",
    "no_data": "dim",
}


def fmt_value(value: float | None, unit: str = "") -> str:
    """A value for people: tonnes as kt, shares with one decimal, dash for none."""
    if value is None:
        return "—"
    if unit == TONNES_CO2E:
        return f"{value / 1000:,.0f} kt"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:,.0f}"


def _latest(r: dict[str, Any]) -> str:
    if r.get("latest_year") is None:
        return "—"
    text = f"{fmt_value(r['latest_value'], r.get('unit', ''))} ({r['latest_year']})"
    coverage = r.get("coverage") or {}
    expected = coverage.get("expected", 0)
    if expected > 1 and coverage.get("reported") != expected:
        text += f"\n{coverage['year']}: {coverage['reported']}/{expected} in"
    return text


def _change(r: dict[str, Any]) -> str:
    """Change since the baseline: percent for amounts, points for shares."""
    latest, baseline = r.get("latest_value"), r.get("baseline_value")
    if latest is None or baseline is None:
        return "—"
    if r.get("unit") == "%":
        return f"{latest - baseline:+.1f} pt"
    achieved = r.get("reduction_achieved_pct")
    return "—" if achieved is None else f"{-achieved:+.1f} %"


def progress_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    """A table of target progress rows (the `Progress.as_json` shape)."""
    table = Table(title=title, title_justify="left")
    table.add_column("target")
    table.add_column("scope")
    for name in ("baseline", "goal", "latest", "change", "vs path", "forecast"):
        table.add_column(name, justify="right")
    table.add_column("status")
    for r in rows:
        unit = r.get("unit") or ""
        style = STATUS_STYLE.get(r["status"], "")
        stale = "\n(stale)" if r.get("stale") else ""
        gap = r.get("gap_to_path")
        baseline_year = r.get("baseline_year") or "—"
        target_year = r.get("target_year") or "no date"
        table.add_row(
            f"{r['target_id']} v{r['version']}",
            r["scope"],
            f"{fmt_value(r.get('baseline_value'), unit)}\n({baseline_year})",
            f"{fmt_value(r.get('target_value'), unit)}\n({target_year})",
            _latest(r),
            _change(r),
            "—" if gap is None else ("+" if gap > 0 else "") + fmt_value(gap, unit),
            fmt_value(r.get("forecast_value"), unit),
            f"[{style}]{r['status']}[/]{stale}",
        )
    return table
