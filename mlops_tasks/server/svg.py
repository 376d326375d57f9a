"""Charts as SVG text, drawn on the server: no script, no external resource.

A chart is a :class:`Frame` (time on x, a value range on y, in a fixed view box the page
scales) and the marks drawn on it. Marks carry only classes and geometry: colours come from the
page's style sheet (light and dark), since the page's Content-Security-Policy forbids inline
styles. Every text that reaches the SVG (titles, tooltips, labels) goes through :func:`esc`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WIDTH = 360
HEIGHT = 110
LEFT = 36  # room for the y labels
RIGHT = 6
TOP = 6
BOTTOM = 16  # room for the x labels


def esc(text: object) -> str:
    """Text safe inside an element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def num(v: float) -> str:
    """A coordinate, to a tenth of a view-box unit (the frame keeps them finite)."""
    return f"{v:.1f}"


@dataclass(frozen=True)
class Frame:
    """The plotting area: ``x0..x1`` (seconds since the epoch) by ``y0..y1``."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: float = WIDTH
    height: float = HEIGHT

    def x(self, t: float) -> float:
        """Clamped into the frame; NaN is drawn at its left edge."""
        span = self.x1 - self.x0 or 1.0
        t = min(max(t, self.x0), self.x1) if t == t else self.x0  # noqa: PLR0124 - NaN test
        return LEFT + (t - self.x0) / span * (self.width - LEFT - RIGHT)

    def y(self, v: float) -> float:
        """Clamped into the frame; NaN is drawn at its bottom."""
        span = self.y1 - self.y0 or 1.0
        v = min(max(v, self.y0), self.y1) if v == v else self.y0  # noqa: PLR0124 - NaN test
        return self.height - BOTTOM - (v - self.y0) / span * (self.height - TOP - BOTTOM)

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM


def svg(frame: Frame, label: str, body: Iterable[str], kind: str) -> str:
    """The chart element: a described image of class ``chart <kind>``."""
    return (f'<svg class="chart {esc(kind)}" viewBox="0 0 {num(frame.width)} '
            f'{num(frame.height)}" '
            f'role="img" aria-label="{esc(label)}">'
            f"<title>{esc(label)}</title>{''.join(body)}</svg>")


def axes(frame: Frame, y_ticks: Sequence[tuple[float, str]],
         x_ticks: Sequence[tuple[float, str]]) -> str:
    """Grid lines with their labels."""
    out = []
    for v, text in y_ticks:
        y = num(frame.y(v))
        out.append(f'<line class="grid" x1="{LEFT}" x2="{frame.width - RIGHT}" y1="{y}" '
                   f'y2="{y}"/><text class="tick" x="{LEFT - 3}" y="{y}" '
                   f'text-anchor="end" dominant-baseline="middle">{esc(text)}</text>')
    for t, text in x_ticks:
        x = num(frame.x(t))
        out.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{TOP}" y2="{num(frame.bottom)}"/>'
                   f'<text class="tick" x="{x}" y="{frame.height - 3}" '
                   f'text-anchor="middle">{esc(text)}</text>')
    return "".join(out)


def line(frame: Frame, points: Sequence[tuple[float, float | None]], kind: str,
         series: str) -> str:
    """A line through the known points; an unknown value (None) breaks it. A point with no
    neighbour is drawn as a dot. ``series`` names it for readers (``data-series``)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in points:
        if v is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((frame.x(t), frame.y(v)))
    out = []
    for run in (r for r in runs if r):
        if len(run) == 1:
            (x, y), = run
            out.append(f'<circle class="dot {esc(kind)}" cx="{num(x)}" cy="{num(y)}" r="1.8"/>')
            continue
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)  # num(), inlined: many points
        out.append(f'<polyline class="line {esc(kind)}" points="{coords}"/>')
    return f'<g data-series="{esc(series)}">{"".join(out)}</g>'


def steps(frame: Frame, changes: Sequence[tuple[float, float | None]], until: float, kind: str,
          series: str) -> str:
    """A value held from each change until the next (the last until ``until``), as one path;
    an unknown value leaves a gap."""
    parts = []
    for i, (t, v) in enumerate(changes):
        end = changes[i + 1][0] if i + 1 < len(changes) else until
        if v is None or end < frame.x0:
            continue
        y = num(frame.y(v))
        parts.append(f"M{num(frame.x(t))},{y}H{num(frame.x(end))}")
        if i + 1 < len(changes) and changes[i + 1][1] is not None:
            parts.append(f"V{num(frame.y(changes[i + 1][1] or 0.0))}")
    return (f'<g data-series="{esc(series)}"><path class="step {esc(kind)}" '
            f'd="{"".join(parts)}"/></g>')


def marker(frame: Frame, t: float, v: float, kind: str, title: str) -> str:
    """A point of note (a tuning application, a rollback) with its tooltip."""
    x, y = num(frame.x(t)), num(frame.y(v))
    return (f'<g class="marker {esc(kind)}"><title>{esc(title)}</title>'
            f'<circle cx="{x}" cy="{y}" r="3.2"/></g>')


def bars(frame: Frame, columns: Sequence[tuple[float, float, Sequence[tuple[float, str]]]],
         series: str) -> str:
    """Stacked columns: (start, width in seconds, [(height, kind), ...] from the bottom); one
    path per kind."""
    paths: dict[str, list[str]] = {}
    for start, width_s, stack in columns:
        x = frame.x(start)
        w = num(max(frame.x(start + width_s) - x - 0.6, 0.6))
        base = 0.0
        for height, kind in stack:
            if height <= 0:
                continue
            top, bottom = frame.y(base + height), frame.y(base)
            paths.setdefault(kind, []).append(  # num(), inlined: many bars
                f"M{x:.1f},{top:.1f}h{w}v{max(bottom - top, 0.3):.1f}h-{w}z")
            base += height
    return f'<g data-series="{esc(series)}">' + "".join(
        f'<path class="bar {esc(kind)}" d="{"".join(d)}"/>' for kind, d in paths.items()) + "</g>"


def band(frame: Frame, start: float, end: float, top: float, height: float, kind: str,
         title: str) -> str:
    """A horizontal interval (an alert firing, a silence) at ``top`` (view-box units)."""
    x0, x1 = frame.x(start), frame.x(end)
    return (f'<rect class="band {esc(kind)}" x="{num(x0)}" y="{num(top)}" '
            f'width="{num(max(x1 - x0, 1.5))}" height="{num(height)}">'
            f"<title>{esc(title)}</title></rect>")


def label(x: float, y: float, text: str, kind: str = "lane") -> str:
    return f'<text class="{esc(kind)}" x="{num(x)}" y="{num(y)}">{esc(text)}</text>'
