"""SVG charts drawn on the server: a line chart of series over time, paired histograms, and
a pipeline's DAG. Plain SVG that any browser draws, with a title and a legend a screen
reader can read; no script and nothing fetched.

Every number that goes into the markup is formatted here and every label is escaped, so a
feature or variant name cannot inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

# Colours that stay apart for the common colour-vision deficiencies (Okabe-Ito).
PALETTE = (
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000",
)  # fmt: skip

Point = tuple[float | datetime, float]


@dataclass(frozen=True)
class Frame:
    """The plotting area inside the axes' margins."""

    width: int = 640
    height: int = 240
    left: int = 56
    right: int = 16
    top: int = 12
    bottom: int = 36

    @property
    def inner_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def inner_height(self) -> int:
        return self.height - self.top - self.bottom


def _x_value(x: float | datetime) -> float:
    if isinstance(x, datetime):
        return (x if x.tzinfo else x.replace(tzinfo=UTC)).timestamp()
    return float(x)


def _nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:.3g}".rstrip("0").rstrip(".") if "." in f"{value:.3g}" else f"{value:.3g}"


def _time_label(seconds: float, span: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%H:%M:%S" if span < 3 * 3600 else "%m-%d %H:%M")


def _empty(title: str, frame: Frame, message: str) -> Markup:
    return Markup(
        f'<svg class="chart chart-empty" role="img" viewBox="0 0 {frame.width} {frame.height}"'
        f' aria-label="{escape(title)}: {escape(message)}"><title>{escape(title)}</title>'
        f'<text x="{frame.width / 2}" y="{frame.height / 2}" text-anchor="middle">'
        f"{escape(message)}</text></svg>"
    )


def line_chart(
    title: str,
    series: Mapping[str, Sequence[Point]],
    *,
    y_label: str = "",
    frame: Frame | None = None,
    empty: str = "no data yet",
) -> Markup:
    """One line per series over a shared x axis (numbers, or datetimes drawn as times),
    a dot on each point, a legend below. Non-finite values are left out."""
    frame = frame or Frame()
    clean = {
        name: sorted(
            ((_x_value(x), float(y)) for x, y in points if y is not None and math.isfinite(y)),
            key=lambda p: p[0],
        )
        for name, points in series.items()
    }
    clean = {name: points for name, points in clean.items() if points}
    if not clean:
        return _empty(title, frame, empty)
    temporal = any(isinstance(x, datetime) for points in series.values() for x, _ in points)
    xs = [x for points in clean.values() for x, _ in points]
    ys = [y for points in clean.values() for _, y in points]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(0.0, min(ys)), max(ys)
    if y_high == y_low:
        y_high = y_low + (abs(y_low) or 1.0)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1

    def sx(x: float) -> float:
        return frame.left + (x - x_low) / (x_high - x_low) * frame.inner_width

    def sy(y: float) -> float:
        return frame.top + (1 - (y - y_low) / (y_high - y_low)) * frame.inner_height

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {frame.width}'
        f' {frame.height + 22 * _legend_rows(clean)}"'
        f' aria-label="{escape(title)}"><title>{escape(title)}</title>',
        _axes(frame, y_low, y_high, x_low, x_high, sy, sx, temporal, y_label),
    ]
    for index, (name, points) in enumerate(clean.items()):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        parts.append(
            f'<g class="series" data-series="{escape(name)}">'
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
        )
        for x, y in points:
            label = _time_label(x, x_high - x_low) if temporal else _fmt(x)
            parts.append(
                f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)} at {escape(label)}: {escape(_fmt(y))}</title></circle>"
            )
        parts.append("</g>")
    parts.append(_legend(frame, list(clean)))
    parts.append("</svg>")
    return Markup("".join(parts))


def _legend_rows(series: Mapping[str, object]) -> int:
    return max(1, math.ceil(len(series) / 4))


def _legend(frame: Frame, names: list[str]) -> str:
    items = []
    for index, name in enumerate(names):
        row, col = divmod(index, 4)
        x = frame.left + col * (frame.inner_width / 4)
        y = frame.height + 4 + row * 22
        colour = PALETTE[index % len(PALETTE)]
        items.append(
            f'<g class="legend-item"><rect x="{x:.1f}" y="{y}" width="12" height="12"'
            f' fill="{colour}"/><text x="{x + 16:.1f}" y="{y + 10}">{escape(name[:28])}</text></g>'
        )
    return '<g class="legend">' + "".join(items) + "</g>"


def _axes(
    frame: Frame,
    y_low: float,
    y_high: float,
    x_low: float,
    x_high: float,
    sy: object,
    sx: object,
    temporal: bool,
    y_label: str,
) -> str:
    assert callable(sy) and callable(sx)
    bottom = frame.top + frame.inner_height
    out = [
        f'<g class="axes"><line x1="{frame.left}" y1="{bottom}" x2="{frame.width - frame.right}"'
        f' y2="{bottom}"/><line x1="{frame.left}" y1="{frame.top}" x2="{frame.left}"'
        f' y2="{bottom}"/>'
    ]
    for tick in _nice_ticks(y_low, y_high):
        y = sy(tick)
        out.append(
            f'<line class="grid" x1="{frame.left}" y1="{y:.1f}" x2="{frame.width - frame.right}"'
            f' y2="{y:.1f}"/><text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_fmt(tick))}</text>"
        )
    span = x_high - x_low
    ticks = [x_low + span * i / 4 for i in range(5)]
    if not temporal and x_low.is_integer() and x_high.is_integer():
        # Counts (trial numbers, runs): whole ticks only, never "1.5".
        ticks = [float(t) for t in _nice_ticks(x_low, x_high) if float(t).is_integer()] or [x_low]
    for x in ticks:
        label = _time_label(x, span) if temporal else _fmt(x)
        # The end labels align to the axis' ends, so neither is cut by the frame.
        at_start, at_end = abs(x - x_low) < span / 20, abs(x_high - x) < span / 20
        anchor = "start" if at_start else "end" if at_end else "middle"
        out.append(
            f'<text x="{sx(x):.1f}" y="{bottom + 16}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    if y_label:
        out.append(
            f'<text class="axis-label" x="12" y="{frame.top + frame.inner_height / 2:.1f}"'
            f' transform="rotate(-90 12 {frame.top + frame.inner_height / 2:.1f})"'
            f' text-anchor="middle">{escape(y_label)}</text>'
        )
    out.append("</g>")
    return "".join(out)


def histograms(
    title: str,
    edges: Sequence[float] | None,
    groups: Mapping[str, Sequence[float]],
    *,
    categories: Sequence[str] | None = None,
    frame: Frame | None = None,
) -> Markup:
    """Side-by-side bars per bin for each group (e.g. baseline and current), as shares of
    each group's total so different sample sizes compare. Bins are numeric ``edges``
    (len(counts) + 1) or ``categories``."""
    frame = frame or Frame(height=180)
    labels: list[str]
    if categories is not None:
        labels = [str(c) for c in categories]
    elif edges is not None and len(edges) >= 2:
        labels = [_fmt(float(edges[i])) for i in range(len(edges) - 1)]
    else:
        return _empty(title, frame, "no histogram")
    shares: dict[str, list[float]] = {}
    for name, counts in groups.items():
        total = float(sum(counts)) or 1.0
        shares[name] = [float(c) / total for c in counts[: len(labels)]]
    if not shares or not labels:
        return _empty(title, frame, "no histogram")
    top = max((v for values in shares.values() for v in values), default=0.0) or 1.0
    slot = frame.inner_width / len(labels)
    bar = max(1.0, (slot - 2) / len(shares))
    bottom = frame.top + frame.inner_height
    parts = [
        f'<svg class="chart histogram" role="img" viewBox="0 0 {frame.width} {frame.height + 22}"'
        f' aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<g class="axes"><line x1="{frame.left}" y1="{bottom}" x2="{frame.width - frame.right}"'
        f' y2="{bottom}"/></g>',
    ]
    for tick in _nice_ticks(0.0, top, 3):
        y = frame.top + (1 - tick / top) * frame.inner_height
        parts.append(
            f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>'
        )
    for index, (name, values) in enumerate(shares.items()):
        colour = PALETTE[index % len(PALETTE)]
        for i, value in enumerate(values):
            height = value / top * frame.inner_height
            x = frame.left + i * slot + 1 + index * bar
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{bottom - height:.1f}" width="{bar:.1f}"'
                f' height="{height:.1f}" fill="{colour}"><title>{escape(name)},'
                f" {escape(labels[i])}: {value:.1%}</title></rect>"
            )
    step = max(1, len(labels) // 8)
    for i in range(0, len(labels), step):
        parts.append(
            f'<text x="{frame.left + (i + 0.5) * slot:.1f}" y="{bottom + 16}"'
            f' text-anchor="middle">{escape(labels[i][:10])}</text>'
        )
    parts.append(_legend(frame, list(shares)))
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Node:
    name: str
    state: str
    after: tuple[str, ...]
    href: str = ""
    detail: str = ""


def dag(title: str, nodes: Sequence[Node], *, width: int = 180, height: int = 44) -> Markup:
    """A DAG left to right: each node in the column after its deepest predecessor, an edge
    per dependency, the node's class its state (``state-Succeeded`` …) for the stylesheet."""
    if not nodes:
        return _empty(title, Frame(height=80), "no steps")
    by_name = {node.name: node for node in nodes}
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in depth:
            return depth[name]
        parents = [p for p in by_name[name].after if p in by_name and p not in seen]
        depth[name] = 1 + max((level(p, seen | {name}) for p in parents), default=-1)
        return depth[name]

    for node in nodes:
        level(node.name)
    columns: dict[int, list[str]] = {}
    for node in nodes:
        columns.setdefault(depth[node.name], []).append(node.name)
    gap_x, gap_y = 60, 20
    place: dict[str, tuple[float, float]] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            place[name] = (10 + col * (width + gap_x), 10 + row * (height + gap_y))
    total_w = 20 + (max(columns) + 1) * (width + gap_x) - gap_x
    total_h = 20 + max(len(n) for n in columns.values()) * (height + gap_y) - gap_y
    parts = [
        f'<svg class="chart dag" role="img" viewBox="0 0 {total_w} {total_h}"'
        f' width="{total_w}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6"'
        ' markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/>'
        "</marker></defs>"
    ]
    for node in nodes:
        x2, y2 = place[node.name]
        for parent in node.after:
            if parent not in place:
                continue
            x1, y1 = place[parent]
            parts.append(
                f'<path class="edge" d="M {x1 + width:.1f} {y1 + height / 2:.1f} C'
                f" {x1 + width + gap_x / 2:.1f} {y1 + height / 2:.1f}, {x2 - gap_x / 2:.1f}"
                f' {y2 + height / 2:.1f}, {x2:.1f} {y2 + height / 2:.1f}"'
                ' marker-end="url(#arrow)"/>'
            )
    for node in nodes:
        x, y = place[node.name]
        state = "".join(c for c in node.state if c.isalnum())
        detail = " · " + escape(node.detail) if node.detail else ""
        box = (
            f'<g class="node state-{state}" data-step="{escape(node.name)}"'
            f' data-state="{escape(node.state)}"><rect x="{x}" y="{y}" width="{width}"'
            f' height="{height}" rx="6"/><text x="{x + 10}" y="{y + 18}"'
            f' class="node-name">{escape(node.name[:24])}</text><text x="{x + 10}" y="{y + 34}"'
            f' class="node-state">{escape(node.state)}{detail}'
            "</text></g>"
        )
        if node.href:
            box = f'<a href="{escape(node.href)}">{box}</a>'
        parts.append(box)
    parts.append("</svg>")
    return Markup("".join(parts))


def timeline(
    title: str, bars: Sequence[tuple[str, datetime | None, datetime | None, str]]
) -> Markup:
    """A Gantt row per (label, start, end, state): when each step ran, to scale."""
    spans = [(n, s, e, st) for n, s, e, st in bars if s is not None]
    frame = Frame(height=24 * max(1, len(spans)) + 40, left=140)
    if not spans:
        return _empty(title, frame, "nothing has run yet")
    now = datetime.now(UTC)
    starts = [_x_value(s) for _, s, _, _ in spans if s is not None]
    ends = [_x_value(e or now) for _, _, e, _ in spans]
    low, high = min(starts), max(ends)
    span = (high - low) or 1.0
    parts = [
        f'<svg class="chart timeline" role="img" viewBox="0 0 {frame.width} {frame.height}"'
        f' aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for row, (name, start, end, state) in enumerate(spans):
        assert start is not None
        x0 = frame.left + (_x_value(start) - low) / span * frame.inner_width
        x1 = frame.left + (_x_value(end or now) - low) / span * frame.inner_width
        y = frame.top + row * 24
        seconds = _x_value(end or now) - _x_value(start)
        css = "".join(c for c in state if c.isalnum())
        parts.append(
            f'<text x="{frame.left - 6}" y="{y + 14}" text-anchor="end">{escape(name[:20])}</text>'
            f'<rect class="span state-{css}" x="{x0:.1f}" y="{y}" width="{max(2.0, x1 - x0):.1f}"'
            f' height="18" rx="3"><title>{escape(name)}: {seconds:.1f} s'
            f" ({escape(state)})</title></rect>"
        )
    bottom = frame.top + len(spans) * 24 + 14
    parts.append(
        f'<text x="{frame.left}" y="{bottom}">0 s</text><text x="{frame.width - frame.right}"'
        f' y="{bottom}" text-anchor="end">{span:.1f} s</text></svg>'
    )
    return Markup("".join(parts))
