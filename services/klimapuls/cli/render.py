"""Rich rendering shared by CLI commands.

Target ids and statuses are never cut: the progress table is laid out for
the console's width, and where it does not fit, each target becomes a short
block of text instead. Output that is not a terminal is laid out for
`COLUMNS` when set, else 160 columns, and never hard-wrapped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from klimapuls.core.model import TONNES_CO2E

__all__ = [
    "STATUS_STYLE",
    "fmt_value",
    "print_progress",
    "progress_blocks",
    "progress_table",
]

STATUS_STYLE = {
    "achieved": "bold green",
    "on_track": "green",
    "at_risk": "yellow",
    "off_track": "bold red",
    "no_data": "dim",
}
_PIPE_WIDTH = 160


def fmt_value(value: float | None, unit: str = "") -> str:
    """A value for people: tonnes as kt, shares with one decimal, dash for none."""
    if value is None:
        return "—"
    if unit == TONNES_CO2E:
        return f"{value / 1000:,.0f} kt"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:,.0f}"


def _signed(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = fmt_value(abs(value), unit)
    if unit == "%":
        text = text.replace(" %", " pt")
    return ("+" if value > 0 else "-" if value < 0 else "±") + text


def _latest(r: dict[str, Any]) -> str:
    if r.get("latest_year") is None:
        return "—"
    text = f"{fmt_value(r['latest_value'], r.get('unit', ''))} ({r['latest_year']})"
    coverage = r.get("coverage") or {}
    expected = coverage.get("expected", 0)
    if expected > 1 and coverage.get("reported") != expected:
        text += f"\n{coverage['year']}: {coverage['reported']}/{expected} in"
    return text


def _achieved(r: dict[str, Any]) -> str:
    """Share of the way from the baseline to the goal (reads right both ways)."""
    share = r.get("goal_achieved_pct")
    return "—" if share is None else f"{share:.0f} %"


def _per_year(r: dict[str, Any]) -> str:
    change = r.get("required_annual_change")
    return "—" if change is None else _signed(change, r.get("unit") or "") + "/yr"


def _status(r: dict[str, Any]) -> str:
    style = STATUS_STYLE.get(r["status"], "")
    text = f"[{style}]{escape(r['status'])}[/]" if style else escape(r["status"])
    return text + (" (stale)" if r.get("stale") else "")


def progress_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    """A table of target progress rows (the `Progress.as_json` shape)."""
    table = Table(title=escape(title), title_justify="left")
    table.add_column("target", no_wrap=True)
    table.add_column("scope", no_wrap=True)
    for name in ("baseline", "goal", "latest", "achieved", "vs path", "forecast"):
        table.add_column(name, justify="right")
    table.add_column("needed", justify="right")
    table.add_column("status", no_wrap=True)
    for r in rows:
        unit = r.get("unit") or ""
        baseline_year = r.get("baseline_year") or "—"
        target_year = r.get("target_year") or "no date"
        table.add_row(
            escape(f"{r['target_id']} v{r['version']}"),
            escape(r["scope"]),
            f"{fmt_value(r.get('baseline_value'), unit)}\n({baseline_year})",
            f"{fmt_value(r.get('target_value'), unit)}\n({target_year})",
            _latest(r),
            _achieved(r),
            _signed(r.get("gap_to_path"), unit),
            fmt_value(r.get("forecast_value"), unit),
            _per_year(r),
            _status(r),
        )
    return table


def progress_blocks(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One block of text per target, for consoles too narrow for the table."""
    blocks = []
    for r in rows:
        unit = r.get("unit") or ""
        goal = fmt_value(r.get("target_value"), unit)
        deadline = r.get("target_year") or "no date"
        baseline = fmt_value(r.get("baseline_value"), unit)
        latest = _latest(r).replace("\n", ", ")
        blocks.append(
            f"[bold]{escape(r['target_id'])}[/] v{r['version']} · "
            f"{escape(r['scope'])} · {_status(r)}\n"
            f"  goal {goal} by {deadline} · baseline {baseline} "
            f"({r.get('baseline_year') or '—'}) · latest {latest}\n"
            f"  achieved {_achieved(r)} of the way · vs path "
            f"{_signed(r.get('gap_to_path'), unit)} · forecast "
            f"{fmt_value(r.get('forecast_value'), unit)} · needed {_per_year(r)}"
        )
    return blocks


def _output(console: Console) -> Console:
    """`console`, or for a pipe without COLUMNS a wide one on the same file."""
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console
    return type(console)(file=console.file, width=_PIPE_WIDTH)


def print_progress(
    console: Console, rows: Sequence[dict[str, Any]], title: str
) -> None:
    """The progress table if it fits the width, else one block per target."""
    out = _output(console)
    table = progress_table(rows, title)
    unbounded = out.options.update(max_width=10_000)
    needed = Measurement.get(out, unbounded, table).maximum
    if needed <= out.width:
        out.print(table)
        return
    out.print(escape(title), style="bold")
    for block in progress_blocks(rows):
        out.print(block)
