"""calcache.views.charts: the dashboard's SVG line chart and its tick values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from calcache.views.charts import MARKERS_UP_TO, PALETTE, SERIES_COLOURS, line_chart, nice_ticks

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def minutes(count: int, value: float = 1.0) -> list[tuple[datetime, float]]:
    return [(T0 + timedelta(minutes=n), value) for n in range(count)]


def test_line_chart_draws_axes_one_polyline_per_series_and_a_legend() -> None:
    svg = line_chart(
        series={
            "sql": [(T0, 1.0), (T0 + timedelta(minutes=5), 2.0)],
            "json": [(T0, 5.0)],
            "<b>": [],
        },
        title="Latency",
        unit="ms",
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="series"') == 3
    assert svg.count('class="legend"') == 3
    assert 'class="axes"' in svg and "&lt;b&gt;" in svg and "<b>" not in svg
    empty = line_chart(series={"sql": []}, title="Nothing")
    assert "No data yet" in empty


def test_sources_keep_their_colours_and_other_series_take_the_palette() -> None:
    svg = line_chart(series={"live": minutes(2), "mismatch %": minutes(2)}, title="Colours")
    assert 'data-series="live" points="' in svg
    live = svg.split('data-series="live"')[1].split("/>")[0]
    other = svg.split('data-series="mismatch %"')[1].split("/>")[0]
    assert f'stroke="{SERIES_COLOURS["live"]}"' in live
    assert f'stroke="{PALETTE[0]}"' in other


def test_a_dot_per_point_only_for_short_series() -> None:
    short = line_chart(series={"sql": minutes(MARKERS_UP_TO)}, title="Short")
    long = line_chart(series={"sql": minutes(MARKERS_UP_TO + 1)}, title="Long")
    assert short.count("<circle") == MARKERS_UP_TO
    assert long.count("<circle") == 0


def test_start_and_end_fix_the_time_axis() -> None:
    svg = line_chart(
        series={"sql": [(T0 + timedelta(hours=3), 1.0)]},
        title="Two days",
        start=T0,
        end=T0 + timedelta(days=2),
    )
    # Over more than a day the time ticks carry the date; every 12 hours from T0.
    assert ">02 Mar 12:00<" in svg and ">03 Mar 00:00<" in svg and ">04 Mar 12:00<" in svg


def test_nice_ticks() -> None:
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(9.3) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert nice_ticks(100)[-1] == 100
    assert nice_ticks(12) == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5]
    assert nice_ticks(0.03) == [0.0, 0.01, 0.02, 0.03]


@pytest.mark.parametrize("high", [-5.0, math.inf, math.nan])
def test_nice_ticks_of_nothing_to_draw(high: float) -> None:
    assert nice_ticks(high) == [0.0, 1.0]


@pytest.mark.parametrize("high", [0.004, 0.7, 1.0, 3.3, 47.0, 99.9, 1234.5, 86_000.0])
def test_nice_ticks_start_at_zero_and_just_reach_the_top(high: float) -> None:
    ticks = nice_ticks(high)
    step = ticks[1]
    assert ticks[0] == 0.0 and ticks[-2] < high <= ticks[-1]
    assert len(ticks) <= 6  # count=5 steps at most
    assert all(math.isclose(b - a, step) for a, b in zip(ticks, ticks[1:], strict=False))
    assert step / 10 ** math.floor(math.log10(step)) in (1, 2, 2.5, 5)
