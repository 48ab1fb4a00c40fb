"""Inline SVG charts, drawn in Python: no script, no network, no library.

Two kinds are enough for the report: a line chart over years (measured
series, paths, forecasts; dashed lines for paths) and a stacked bar chart
over categories (sectors per year, coverage). Every chart has a title, axis
labels with the unit, ticks and a legend, and carries `class="chart"` with
`data-series` so a test can find what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Bars", "Line", "bar_chart", "line_chart", "nice_ticks"]

#: Colour-blind friendly (Okabe-Ito), in series order.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)

_W, _H = 720, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 78, 16, 34, 84


@dataclass(frozen=True)
class Line:
    """One series of a line chart: (x, y) points, drawn solid or dashed."""

    label: str
    points: tuple[tuple[float, float], ...]
    dashed: bool = False
    colour: str | None = None


@dataclass(frozen=True)
class Bars:
    """One stacked layer of a bar chart: a value per category."""

    label: str
    values: tuple[float, ...]
    colour: str | None = None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _number(value: float) -> str:
    """Danish thousands separators, no decimals for large numbers."""
    if abs(value) >= 1000 or value == int(value):
        return f"{value:,.0f}".replace(",", ".")
    return f"{value:.1f}".replace(".", ",")


def _frame(title: str, x_label: str, y_label: str, kind: str, series: int) -> str:
    return (
        f'<svg class="chart" data-kind="{kind}" data-series="{series}" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
        f'role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<rect width="{_W}" height="{_H}" fill="#ffffff"/>'
        f'<text x="{_LEFT}" y="20" class="t">{escape(title)}</text>'
        f'<text x="{(_LEFT + _W - _RIGHT) / 2}" y="{_H - 50}" class="a" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text transform="translate(16 {(_TOP + _H - _BOTTOM) / 2}) rotate(-90)" '
        f'class="a" text-anchor="middle">{escape(y_label)}</text>'
    )


def _legend(items: Sequence[tuple[str, str, bool]]) -> str:
    """Legend entries left to right, wrapping onto a second and third row."""
    parts, x, row = [], float(_LEFT), 0
    for label, colour, dashed in items:
        width = 30 + 6.2 * len(label)
        if x + width > _W - _RIGHT and x > _LEFT:
            x, row = float(_LEFT), row + 1
        y = _H - 34 + 14 * row
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        parts.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" '
            f'stroke="{colour}" stroke-width="3"{dash}/>'
            f'<text x="{x + 22}" y="{y}" class="l">{escape(label)}</text>'
        )
        x += width
    return "".join(parts)


def _y_axis(ticks: Sequence[float], scale_y: object) -> str:
    parts = []
    for tick in ticks:
        y = scale_y(tick)  # type: ignore[operator]
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" '
            f'class="g"/><text x="{_LEFT - 6}" y="{y + 4:.1f}" class="k" '
            f'text-anchor="end">{_number(tick)}</text>'
        )
    return "".join(parts)


def line_chart(title: str, lines: Sequence[Line], x_label: str, y_label: str) -> str:
    """A line chart of `lines` over numeric x (years); empty series are left out."""
    drawn = [line for line in lines if line.points]
    xs = [x for line in drawn for x, _ in line.points] or [0.0, 1.0]
    ys = [y for line in drawn for _, y in line.points] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    ticks = nice_ticks(min(0.0, min(ys)), max(ys))

    def sx(x: float) -> float:
        return _LEFT + (x - x0) / (x1 - x0) * (_W - _LEFT - _RIGHT)

    def sy(y: float) -> float:
        span = ticks[-1] - ticks[0] or 1
        return _H - _BOTTOM - (y - ticks[0]) / span * (_H - _TOP - _BOTTOM)

    parts = [_frame(title, x_label, y_label, "line", len(drawn)), _y_axis(ticks, sy)]
    for tick in nice_ticks(x0, x1, 8):
        if x0 <= tick <= x1:
            parts.append(
                f'<text x="{sx(tick):.1f}" y="{_H - _BOTTOM + 16}" class="k" '
                f'text-anchor="middle">{tick:.0f}</text>'
            )
    legend = []
    for index, line in enumerate(drawn):
        colour = line.colour or PALETTE[index % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(line.points))
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        parts.append(
            f'<polyline class="series" data-label="{escape(line.label)}" '
            f'points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"'
            f"{dash}/>"
        )
        if len(line.points) == 1 or not line.dashed:
            parts.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>'
                for x, y in line.points
            )
        legend.append((line.label, colour, line.dashed))
    parts.append(_legend(legend))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    title: str,
    categories: Sequence[str],
    layers: Sequence[Bars],
    x_label: str,
    y_label: str,
) -> str:
    """Stacked bars: one bar per category, one coloured layer per `Bars`."""
    totals = [
        sum(layer.values[i] for layer in layers) for i in range(len(categories))
    ] or [1.0]
    ticks = nice_ticks(0.0, max(totals) or 1.0)
    plot_w = _W - _LEFT - _RIGHT
    slot = plot_w / max(len(categories), 1)

    def sy(y: float) -> float:
        return _H - _BOTTOM - y / (ticks[-1] or 1) * (_H - _TOP - _BOTTOM)

    parts = [
        _frame(title, x_label, y_label, "bar", len(layers)),
        _y_axis(ticks, sy),
    ]
    label_every = max(1, math.ceil(len(categories) / 16))
    for i, category in enumerate(categories):
        x = _LEFT + i * slot + slot * 0.15
        base = 0.0
        for index, layer in enumerate(layers):
            value = layer.values[i]
            colour = layer.colour or PALETTE[index % len(PALETTE)]
            top = sy(base + value)
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{top:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{sy(base) - top:.1f}" '
                f'fill="{colour}"><title>{escape(category)} '
                f"{escape(layer.label)}: {_number(value)}</title></rect>"
            )
            base += value
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{_H - _BOTTOM + 16}" '
                f'class="k" text-anchor="middle">{escape(category)}</text>'
            )
    colours = [
        (layer.label, layer.colour or PALETTE[i % len(PALETTE)], False)
        for i, layer in enumerate(layers)
    ]
    parts.append(_legend(colours))
    parts.append("</svg>")
    return "".join(parts)
