"""Trend charts for the drift report as inline SVG, drawn here so the page works offline.

Pure functions from numbers to markup; they must never fetch a script, a font or an image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

PALETTE = (
    "#1f5fa8", "#d9822b", "#2e8b57", "#b03a48", "#6b4c9a", "#4d4d4d", "#0f8b8d",
    "#a6761d", "#e7298a", "#66a61e", "#7f7fff", "#8c564b",
)  # fmt: skip
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 44


def _ticks(top: float, bottom: float = 0.0) -> list[float]:
    """Gridlines from `bottom` (0 by default) past `top` in a round step (1, 2 or 5 times a
    power of ten); with a bottom above 0 the first line is the round step below it."""
    if top <= bottom:
        return [bottom, bottom + 1.0]
    rough = (top - bottom) / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    first = math.floor(bottom / step)
    return [round(step * i, 10) for i in range(first, math.ceil(top / step) + 1)]


def _number(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def date_labels(moments: Sequence[datetime]) -> list[str]:
    """Axis labels by date (2026-12-05); the time is added only where two runs share a day."""
    days = [m.strftime("%Y-%m-%d") for m in moments]
    return [
        f"{day} {m:%H:%M}" if days.count(day) > 1 else day
        for day, m in zip(days, moments, strict=True)
    ]


LEGEND_ROW, LEGEND_COLUMN = 16, 130


def line_chart(
    labels: list[str],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    zoom: bool = False,
) -> str:
    """One line per series over the runs in `labels` (oldest first), with a legend.

    A value of None is a gap (the run did not measure that series). With `zoom` the axis starts
    near the smallest value instead of 0 (match rates sit close to 100).
    """
    if not labels or not series:
        return f'<p class="muted">{escape(title)}: no runs yet.</p>'
    values_seen = [v for values in series.values() for v in values if v is not None]
    top = max(values_seen + [0.0])
    ticks = _ticks(top, min(values_seen) if zoom and values_seen else 0.0)
    bottom, top = ticks[0], ticks[-1]
    per_row = max(1, (WIDTH - LEFT) // LEGEND_COLUMN)
    legend_rows = math.ceil(len(series) / per_row)
    height = HEIGHT + (legend_rows - 1) * LEGEND_ROW
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / max(len(labels) - 1, 1) if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * (v - bottom) / (top - bottom)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    for tick in ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" class="axis" text-anchor="end">'
            f"{_number(tick)}</text>"
        )
    step = max(1, math.ceil(len(labels) / 5))
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            if i != len(labels) - 1 and len(labels) - 1 - i < step / 2:
                continue  # too close to the last label, which is always shown
            anchor = "middle"
            if len(labels) > 1 and i == 0:
                anchor = "start"
            elif len(labels) > 1 and i == len(labels) - 1:
                anchor = "end"
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" class="axis x-label" '
                f'text-anchor="{anchor}">{escape(label)}</text>'
            )
    for n, (name, values) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        dash = "" if n < len(PALETTE) else ' stroke-dasharray="5 3"'  # past 12 series
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        for points in runs:
            if points:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash}/>'
                )
        for i, v in enumerate(values):
            if v is not None:
                parts.append(
                    f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(name)} {escape(labels[i])}: {_number(v)}</title></circle>"
                )
        legend_x = LEFT + (n % per_row) * LEGEND_COLUMN
        legend_y = HEIGHT - 14 + (n // per_row) * LEGEND_ROW
        parts.append(
            f'<rect x="{legend_x}" y="{legend_y}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{legend_y + 9}" class="axis">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
