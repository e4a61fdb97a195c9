"""Trend charts are inline SVG drawn from numbers alone."""

from __future__ import annotations

from tieout.report import charts


def test_line_chart_draws_each_series_offline():
    svg = charts.line_chart(["r1", "r2", "r3"], {"open": [3, 5, 4], "new": [3, 2, 0]}, "Findings")
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_no_runs_yet():
    assert "no runs yet" in charts.line_chart([], {}, "Findings")


def test_labels_are_escaped():
    assert "&lt;b&gt;" in charts.line_chart(["<b>"], {"x": [1]}, "t")


def test_gridlines_cover_the_largest_value():
    for top in (0.5, 7, 99, 588, 69_938.95, 1_000_001):
        ticks = charts._ticks(top)
        assert ticks[0] == 0 and ticks[-1] >= top and len(ticks) <= 7


def test_axis_labels_are_dates_with_a_time_only_where_a_day_has_two_runs():
    from datetime import datetime

    moments = [datetime(2026, 12, 4, 2), datetime(2026, 12, 5, 2), datetime(2026, 12, 5, 14)]
    assert charts.date_labels(moments) == ["2026-12-04", "2026-12-05 02:00", "2026-12-05 14:00"]
    svg = charts.line_chart(charts.date_labels(moments[:2]), {"open": [3, 5]}, "Findings")
    assert 'class="axis x-label" text-anchor="start">2026-12-04<' in svg


def test_zoomed_axis_starts_near_the_smallest_value_and_gaps_stay_gaps():
    svg = charts.line_chart(["a", "b", "c"], {"rate": [97.5, None, 99.0]}, "Match", zoom=True)
    assert charts._ticks(99.0, 97.5) == [97.5, 98.0, 98.5, 99.0]
    assert ">97.50<" in svg and ">0<" not in svg
    assert svg.count("<polyline") == 2  # one line each side of the run that measured nothing
