"""A small server-side SVG line chart for the dashboard: axes, one polyline per series,
a legend. No JavaScript, no external assets; the SVG is inlined in the page."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

Point = tuple[datetime, float]

# The availability sources keep their colour on every chart; other series take the palette.
SERIES_COLOURS = {"sql": "#2e9e5b", "json": "#2f6fde", "live": "#e08a1e", "mixed": "#a03fb8"}
PALETTE = ("#7b4fd6", "#d64f8a", "#3aa6b9", "#8c6d31", "#5b6475")

MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 28, 34
MARKERS_UP_TO = 60  # draw a dot per point when a series has no more points than this


def nice_ticks(high: float, *, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high`` (1, 2, 2.5 or 5 times a power of ten)."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _time_ticks(start: float, end: float, *, count: int = 6) -> list[float]:
    span = end - start
    steps = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
    step = next((s for s in steps if span / s <= count), 86400 * math.ceil(span / 86400 / count))
    first = math.ceil(start / step) * step
    return [float(t) for t in range(int(first), int(end) + 1, int(step))]


def _time_label(timestamp: float, span: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%d %b %H:%M" if span > 86400 else "%H:%M")


def line_chart(
    *,
    series: Mapping[str, Sequence[Point]],
    title: str,
    unit: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    width: int = 720,
    height: int = 240,
) -> SafeString:
    """An inline ``<svg>`` line chart of time series (UTC times on x, values from 0 on y).

    ``series`` maps a legend name to its points in time order; empty series still get a
    legend entry. ``start``/``end`` fix the x range (default: the points' range).
    """
    times = [t.timestamp() for points in series.values() for t, _ in points]
    x0 = start.timestamp() if start else min(times, default=0.0)
    x1 = end.timestamp() if end else max(times, default=0.0)
    if x1 <= x0:
        x0, x1 = x0 - 60, x0 + 60
    values = [v for points in series.values() for _, v in points]
    y_ticks = nice_ticks(max(values, default=0.0))
    y1 = y_ticks[-1]
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM

    def x(timestamp: float) -> float:
        return left + (timestamp - x0) / (x1 - x0) * (right - left)

    def y(value: float) -> float:
        return bottom - value / y1 * (bottom - top)

    label = escape(f"{title} ({unit})" if unit else title)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{label}" font-family="system-ui, sans-serif" '
        'font-size="11">',
        f"<title>{label}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="600" fill="#1d2330">{label}</text>',
    ]
    for tick in y_ticks:
        ty = y(tick)
        parts.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" stroke="#e6e9ef"/>'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#5b6475">'
            f"{_label(tick)}</text>"
        )
    for tick in _time_ticks(x0, x1):
        tx = x(tick)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{bottom}" x2="{tx:.1f}" y2="{bottom + 4}" stroke="#5b6475"/>'
            f'<text x="{tx:.1f}" y="{bottom + 16}" text-anchor="middle" fill="#5b6475">'
            f"{_time_label(tick, x1 - x0)}</text>"
        )
    parts.append(
        f'<polyline class="axes" points="{left},{top} {left},{bottom} {right},{bottom}" '
        'fill="none" stroke="#5b6475"/>'
    )
    legend_x = right
    palette = iter(PALETTE)
    legend: list[str] = []
    for name, points in series.items():
        colour = SERIES_COLOURS.get(name) or next(palette, "#1d2330")
        coords = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in points)
        parts.append(
            f'<polyline class="series" data-series="{escape(name)}" points="{coords}" '
            f'fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round"/>'
        )
        if len(points) <= MARKERS_UP_TO:
            parts.extend(
                f'<circle cx="{x(t.timestamp()):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(name)} {t:%H:%M}: {_label(round(v, 2))}{escape(unit)}</title>"
                "</circle>"
                for t, v in points
            )
        legend.append(f"{colour}|{name}")
    for entry in reversed(legend):
        colour, name = entry.split("|", 1)
        legend_x -= 12 + 7 * len(name) + 14
        parts.append(
            f'<g class="legend"><rect x="{legend_x}" y="7" width="12" height="12" '
            f'fill="{colour}"/><text x="{legend_x + 16}" y="17" fill="#1d2330">'
            f"{escape(name)}</text></g>"
        )
    if not values:
        parts.append(
            f'<text x="{(left + right) / 2}" y="{(top + bottom) / 2}" text-anchor="middle" '
            f'fill="#5b6475">{escape(gettext("No data yet"))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text is escaped above
