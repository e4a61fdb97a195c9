"""Trend charts for the drift report as inline SVG, drawn here so the page works offline.

Pure functions from numbers to markup; they must never fetch a script, a font or an image.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f5fa8", "#d9822b", "#2e8b57", "#b03a48", "#6b4c9a", "#4d4d4d", "#0f8b8d")
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 44


def _ticks(top: float) -> list[float]:
    """Gridlines from 0 past `top` in a round step (1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0, 1.0]
    rough = top / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return [step * i for i in range(math.ceil(top / step) + 1)]


def _number(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def line_chart(labels: list[str], series: dict[str, list[float]], title: str) -> str:
    """One line per series over the runs in `labels` (oldest first), with a legend."""
    if not labels or not series:
        return f'<p class="muted">{escape(title)}: no runs yet.</p>'
    top = max([max(values) for values in series.values() if values] + [0.0])
    ticks = _ticks(top)
    top = ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / max(len(labels) - 1, 1) if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
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
    step = max(1, len(labels) // 6)
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            short = label if len(label) <= 18 else label[:8] + "…" + label[-8:]
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" class="axis" '
                f'text-anchor="middle"><title>{escape(label)}</title>{escape(short)}</text>'
            )
    for n, (name, values) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for i, v in enumerate(values):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)} {escape(labels[i])}: {_number(v)}</title></circle>"
            )
        legend_x = LEFT + n * 110
        parts.append(
            f'<rect x="{legend_x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{HEIGHT - 5}" class="axis">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
