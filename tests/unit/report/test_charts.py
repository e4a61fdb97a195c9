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
