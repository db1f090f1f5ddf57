"""The console's SVG charts: one series and one point per value, escaped labels, empty
states, whole-number ticks for counts, histograms as shares, and DAG columns by depth."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from slipway.console.charts import Node, dag, histograms, line_chart, timeline


def test_a_line_chart_draws_each_series_and_point_and_skips_non_finite() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    svg = line_chart(
        "Drift",
        {
            "a": [(t0, 0.1), (t0 + timedelta(hours=1), 2.0)],
            "b": [(t0, 0.2), (t0 + timedelta(hours=1), math.nan)],
        },
    )
    assert svg.count('<g class="series"') == 2
    assert len(re.findall(r'data-series="a".*?</g>', str(svg))[0].split('class="point"')) == 3
    assert str(svg).count('class="point"') == 3  # the NaN is left out
    assert "00:00:00" in svg and "01:00:00" in svg


def test_labels_are_escaped() -> None:
    svg = str(line_chart("<script>", {'x"><script>alert(1)</script>': [(0, 1.0), (1, 2.0)]}))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_an_empty_chart_says_so() -> None:
    svg = str(line_chart("Latency", {"main": []}, empty="no traffic yet"))
    assert "chart-empty" in svg and "no traffic yet" in svg


def test_counts_on_the_x_axis_get_whole_ticks() -> None:
    svg = str(line_chart("Trials", {"objective": [(n, float(n)) for n in range(4)]}))
    labels = re.findall(r'text-anchor="(?:start|middle|end)">([^<]*)<', svg)
    assert "0.5" not in labels and "1.5" not in labels


def test_histograms_compare_shares_of_each_group() -> None:
    svg = str(histograms("a", [0, 1, 2, 3], {"baseline": [10, 10, 0], "current": [1, 1, 2]}))
    bars = re.findall(r'<rect class="bar"[^>]*><title>([^<]*)</title>', svg)
    assert len(bars) == 6
    assert "baseline, 0: 50.0%" in bars and "current, 2: 50.0%" in bars
    categorical = str(histograms("b", None, {"now": [3, 1]}, categories=["x", "y"]))
    assert categorical.count('class="bar"') == 2
    assert "chart-empty" in str(histograms("c", None, {"now": [1]}))


def test_a_dag_puts_each_step_after_its_deepest_parent() -> None:
    svg = str(
        dag(
            "g",
            [
                Node("load", "Succeeded", ()),
                Node("train", "Running", ("load",)),
                Node("report", "Pending", ("load", "train")),
            ],
        )
    )
    xs = {
        name: float(x)
        for name, x in re.findall(r'data-step="([^"]+)"[^>]*><rect x="([0-9.]+)"', svg)
    }
    assert xs["load"] < xs["train"] < xs["report"]
    assert svg.count('class="edge"') == 3
    assert 'class="node state-Running"' in svg


def test_a_timeline_scales_each_span() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    svg = str(
        timeline(
            "steps",
            [
                ("a", t0, t0 + timedelta(seconds=1), "Succeeded"),
                ("b", t0 + timedelta(seconds=1), t0 + timedelta(seconds=4), "Failed"),
                ("c", None, None, "Pending"),
            ],
        )
    )
    widths = [
        float(w)
        for w in re.findall(r'class="span[^"]*" x="[0-9.]+" y="[0-9.]+" width="([0-9.]+)"', svg)
    ]
    assert len(widths) == 2 and abs(widths[1] / widths[0] - 3) < 0.05
