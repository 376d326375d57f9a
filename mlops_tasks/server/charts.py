"""The charts of a model's card, drawn from its ``ModelCard`` (reports/dashboard.py).

Each chart spans the same time axis: from the start of the span's first bucket to the end of
its last (the current, partial one). Values are placed at the middle of their bucket.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from ..reports.dashboard import ModelCard
from ..reports.timeline import IN_FORCE, Span, Step
from .svg import TOP, Frame, axes, band, bars, label, line, marker, steps, svg

TUNED, ROLLBACK, REGISTER = "auto-tune", "rollback-config", "register"
LANE_H = 16
SMALL_H = 84  # height of the charts under the accuracy chart (view-box units)


def pct(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v * 100:.{digits}f}%"


def compact(v: float) -> str:
    """1234 -> 1.2k."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def time_ticks(span: Span, x0: float, x1: float) -> list[tuple[float, str]]:
    """Midnights (every day of a week, every 7th of a month) or every 6 hours of a day, UTC."""
    every, fmt = {"day": (6 * 3600, "%H:%M"), "week": (86400, "%m-%d"),
                  "month": (7 * 86400, "%m-%d")}.get(span.name, (86400, "%m-%d"))
    first = math.ceil(x0 / every) * every
    return [(t, time.strftime(fmt, time.gmtime(t))) for t in range(int(first), int(x1), every)
            if t > x0 + every * 0.1]


def frame_of(card: ModelCard, span: Span, y0: float, y1: float, height: float = 0) -> Frame:
    x0 = card.points[0].start if card.points else 0
    x1 = (card.points[-1].start + span.bucket_s) if card.points else 1
    return Frame(x0=x0, x1=x1, y0=y0, y1=y1, **({"height": height} if height else {}))


def _mid(start: int, span: Span) -> float:
    return start + span.bucket_s / 2


def _value_range(values: Sequence[float], floor_step: float = 0.05) -> tuple[float, float]:
    """From just under the lowest value (to a multiple of ``floor_step``) up to 1."""
    lo = min(values, default=0.0)
    return max(0.0, math.floor((lo - 0.01) / floor_step) * floor_step), 1.0


def _ratio_ticks(y0: float, y1: float) -> list[tuple[float, str]]:
    """The ends and a round value between them (a multiple of 5 %)."""
    middle = round((y0 + y1) / 2 * 20) / 20
    return [(v, pct(v, 0)) for v in (y0, middle, y1)]


def _step_values(changes: Sequence[Step]) -> list[tuple[float, float | None]]:
    return [(s.at, s.value) for s in changes]


def accuracy_chart(card: ModelCard, span: Span, now: float) -> str:
    """Accuracy of each bucket against the alert threshold in force."""
    acc = [(_mid(p.start, span), p.accuracy) for p in card.points]
    known = [v for _, v in acc if v is not None]
    known += [s.value for s in card.accuracy_threshold if s.value is not None]
    y0, y1 = _value_range(known)
    f = frame_of(card, span, y0, y1)
    body = [axes(f, _ratio_ticks(y0, y1), time_ticks(span, f.x0, f.x1)),
            steps(f, _step_values(card.accuracy_threshold), now, "threshold",
                  "accuracy-threshold"),
            line(f, acc, "accuracy", "accuracy")]
    return svg(f, f"{card.name}: accuracy per {_unit(span)} against the alert threshold",
               body, "accuracy-chart")


def _unit(span: Span) -> str:
    return "hour" if span.bucket_s == 3600 else "day"


def volume_chart(card: ModelCard, span: Span) -> str:
    """Predictions per hour: labeled and unlabeled, stacked."""
    per_hour = 3600 / span.bucket_s
    columns = [(p.start, span.bucket_s, [(min(p.labeled, p.predictions) * per_hour, "labeled"),
                                         (p.unlabeled * per_hour, "unlabeled")])
               for p in card.points]
    top = max((p.predictions * per_hour for p in card.points), default=0.0)
    y1 = top * 1.1 or 1.0
    f = frame_of(card, span, 0.0, y1, SMALL_H)
    body = [axes(f, [(0.0, "0"), (top, compact(top))] if top else [(0.0, "0")],
                 time_ticks(span, f.x0, f.x1)),
            bars(f, columns, "predictions")]
    return svg(f, f"{card.name}: predictions per hour, labeled and unlabeled", body,
               "volume-chart")


def rates_chart(card: ModelCard, span: Span) -> str:
    """False-positive rate and mean confidence of each bucket."""
    f = frame_of(card, span, 0.0, 1.0, SMALL_H)
    body = [axes(f, _ratio_ticks(0.0, 1.0), time_ticks(span, f.x0, f.x1)),
            line(f, [(_mid(p.start, span), p.false_positive_rate) for p in card.points], "fpr",
                 "false-positive-rate"),
            line(f, [(_mid(p.start, span), p.avg_confidence) for p in card.points],
                 "confidence", "avg-confidence")]
    return svg(f, f"{card.name}: false-positive rate and mean confidence", body, "rates-chart")


def _change_title(s: Step) -> str:
    what = {TUNED: "auto-tuning applied", ROLLBACK: "rollback"}.get(s.action, s.action)
    value = "-" if s.value is None else f"{s.value:.3f}"
    who = f" by {s.actor}" if s.actor else ""
    why = f": {s.reason}" if s.reason else ""
    return f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(s.at))} UTC {what} -> {value}{who}{why}"


def threshold_chart(card: ModelCard, span: Span, now: float) -> str:
    """The decision threshold over the span; auto-tuning applications and rollbacks marked."""
    values = [s.value for s in card.decision_threshold if s.value is not None]
    lo = max(0.0, math.floor((min(values, default=0.5) - 0.05) * 20) / 20)
    hi = min(1.0, math.ceil((max(values, default=0.5) + 0.05) * 20) / 20)
    f = frame_of(card, span, lo, hi, SMALL_H)
    body = [axes(f, [(lo, f"{lo:.2f}"), (hi, f"{hi:.2f}")], time_ticks(span, f.x0, f.x1)),
            steps(f, _step_values(card.decision_threshold), now, "decision",
                  "decision-threshold")]
    for s in card.decision_threshold:
        if s.action in (IN_FORCE, REGISTER) or s.value is None:
            continue
        kind = {TUNED: "tuned", ROLLBACK: "rollback"}.get(s.action, "manual")
        body.append(marker(f, s.at, s.value, kind, _change_title(s)))
    return svg(f, f"{card.name}: decision threshold, tuning applications and rollbacks", body,
               "threshold-chart")


def _alert_title(a_kind: str, severity: str, status: str, message: str, start: float,
                 end: float | None, silenced: bool) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(start))
    until = "" if end is None or end == start else \
        f" to {time.strftime('%Y-%m-%d %H:%M', time.gmtime(end))}"
    note = ", silenced" if silenced else ""
    return f"{a_kind} ({severity}, {status}{note}) {when}{until} UTC: {message}"


def alerts_timeline(card: ModelCard, span: Span, now: float) -> str:
    """One lane per alert kind: firing and resolved alerts as bars, events as ticks,
    silences of the subject shaded behind them."""
    kinds = sorted({a.kind for a in card.alerts})
    height = TOP + max(len(kinds), 1) * LANE_H + 16
    f = frame_of(card, span, 0.0, 1.0, height=height)
    body = [axes(f, [], time_ticks(span, f.x0, f.x1))]
    for s in card.silences:
        lanes = range(len(kinds)) if s.kind is None else \
            [kinds.index(s.kind)] if s.kind in kinds else []
        body.extend(band(f, s.start, s.end, TOP + i * LANE_H + 4, 13, "silence",
                         f"silenced {s.kind or 'all kinds'}: {s.reason or ''}") for i in lanes)
    for i, kind in enumerate(kinds):
        body.append(label(f.x(f.x0) + 1, TOP + i * LANE_H + 6, kind))
    for a in card.alerts:
        i = kinds.index(a.kind)
        end = now if a.end is None else a.end
        classes = a.status + (" silenced" if a.silenced else "") + f" {a.severity}"
        body.append(band(f, a.start, end, TOP + i * LANE_H + 7, 7, classes,
                         _alert_title(a.kind, a.severity, a.status, a.message, a.start, a.end,
                                      a.silenced)))
    if not kinds:
        body.append(label(f.x(f.x0) + 1, TOP + 10, "no alerts in the span", "empty"))
    return svg(f, f"{card.name}: alerts (firing, resolved, silenced) and events", body,
               "alerts-chart")
