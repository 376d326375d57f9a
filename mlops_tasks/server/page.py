"""The dashboard page of `mlops serve` as HTML: a system strip and one card per model.

The page is self-contained: no script, no font, nothing from another origin. Its one style
sheet is served by the same server (``STYLE_PATH``), charts are inline SVG (charts.py), and it
reloads itself every ``REFRESH_S`` seconds (``<meta http-equiv="refresh">``, which needs no
script). Every text from Redis (model names, display names, alert messages, job errors) is
escaped; ``CONTENT_SECURITY_POLICY`` forbids scripts, inline styles and other origins anyway.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..reports.dashboard import Dashboard, ModelCard, Status, SystemStrip
from ..reports.timeline import SPANS
from .charts import (
    accuracy_chart,
    alerts_timeline,
    compact,
    pct,
    rates_chart,
    threshold_chart,
    volume_chart,
)
from .svg import esc

REFRESH_S = 60
STYLE_PATH = "/static/dashboard.css"
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"


def _ms(seconds_ms: float | None) -> str:
    return "-" if seconds_ms is None else f"{seconds_ms:.1f} ms"


def _badge(name: str, status: Status) -> str:
    return (f'<span class="badge {esc(status.level)}" title="{esc(status.detail)}">'
            f"{esc(name)}: {esc(status.word)}</span>")


def _stat(name: str, value: str, detail: str = "") -> str:
    extra = f'<span class="detail">{esc(detail)}</span>' if detail else ""
    return f"<div><dt>{esc(name)}</dt><dd>{esc(value)}{extra}</dd></div>"


def _figure(title: str, chart: str, keys: Iterable[tuple[str, str]] = ()) -> str:
    legend = "".join(f'<span class="key {esc(k)}">{esc(text)}</span>' for k, text in keys)
    return (f'<figure><figcaption>{esc(title)}<span class="legend">{legend}</span>'
            f"</figcaption>{chart}</figure>")


def _tuning(card: ModelCard) -> tuple[str, str]:
    t = card.tuning
    if t is None:
        return "no runs kept", ""
    runs = t.applied + t.not_applied
    last = t.last_improvement_percent
    return (f"{t.applied} of {runs} runs applied ({pct(t.applied / runs if runs else None)})",
            "" if last is None else f"last run {last:+.1f}%")


def card_html(card: ModelCard, board: Dashboard) -> str:
    span, now = board.span, board.generated_at
    m = card.span_metrics
    threshold = card.accuracy_threshold[-1].value if card.accuracy_threshold else None
    firing = card.firing
    tuning, tuning_detail = _tuning(card)
    header = (f'<header><h2>{esc(card.display_name)}</h2><p class="sub">{esc(card.name)} '
              f"v{esc(card.version)} · "
              f"{'production' if card.deployed else 'not deployed to production'}</p>"
              f'<p class="badges">{_badge("monitoring", card.monitoring)}'
              f"{_badge('drift', card.drift)}"
              f'<span class="badge {"bad" if firing else "ok"}">'
              f"{firing} alert{'s' if firing != 1 else ''} firing</span></p></header>")
    stats = "".join((
        _stat(f"accuracy ({span.name})", pct(m.get("accuracy")),
              f"threshold {pct(threshold)}"),
        _stat("false-positive rate", pct(m.get("false_positive_rate"))),
        _stat("mean confidence", pct(m.get("avg_confidence"))),
        _stat("latency p50 / p95",
              f"{_ms(m.get('latency_p50_ms'))} / {_ms(m.get('latency_p95_ms'))}"),
        _stat("predictions", compact(float(m.get("predictions") or 0)),
              f"{compact(float(m.get('count') or 0))} labeled"),
        _stat("pending labels", compact(card.pending_labels)),
        _stat("dead letters", compact(card.dead_letters)),
        _stat(f"alerts fired ({span.name})", str(card.fired_since(board.since))),
        _stat("auto-tuning", tuning, tuning_detail)))
    commands = "\n".join(esc(c) for c in card.commands(span))
    return (f'<article class="card" id="model-{esc(card.name)}" data-model="{esc(card.name)}">'
            f'{header}<dl class="stats">{stats}</dl><div class="charts">'
            + _figure("Accuracy against the alert threshold",
                      accuracy_chart(card, span, now),
                      [("accuracy", "accuracy"), ("threshold", "alert threshold")])
            + _figure("Predictions per hour", volume_chart(card, span),
                      [("labeled", "labeled"), ("unlabeled", "unlabeled")])
            + _figure("False-positive rate and mean confidence", rates_chart(card, span),
                      [("fpr", "false-positive rate"), ("confidence", "mean confidence")])
            + _figure("Decision threshold", threshold_chart(card, span, now),
                      [("tuned", "auto-tuning applied"), ("rollback", "rollback"),
                       ("manual", "other change")])
            + _figure("Alerts", alerts_timeline(card, span, now),
                      [("firing", "firing"), ("resolved", "resolved"), ("event", "event"),
                       ("silence", "silenced")])
            + "</div><details><summary>The same numbers in the CLI</summary>"
            f"<pre><code>{commands}</code></pre></details></article>")


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def system_html(s: SystemStrip, now: float) -> str:
    jobs = _table(["job", "last success", "failures in a row", "success (last 100)"],
                  [[j.name, ago(None if j.last_success_at is None else now - j.last_success_at),
                    str(j.consecutive_failures),
                    pct(j.success_rate, 0)] for j in s.scheduler.jobs])
    failing = any(j.consecutive_failures for j in s.scheduler.jobs)
    beat = s.scheduler.beat
    leader = beat.leader
    beat_html = (f'<p class="{"ok" if beat.alive else "bad"}">'
                 f"{'alive' if beat.alive else 'not running'}</p>"
                 f"<p>leader {esc(f'{leader.id}@{leader.host}') if leader else '-'}</p>"
                 f"<p>heartbeat {esc(ago(beat.heartbeat_age_s))}</p>")
    if s.queues is None:
        queues = "<p>the broker's queues are not readable from here (Sentinel)</p>"
    else:
        queues = _table(["queue", "waiting"], [[q, str(n)] for q, n in s.queues.waiting.items()])
        if s.queues.unacked is not None:  # RabbitMQ does not say over AMQP
            queues += f"<p>unacknowledged {s.queues.unacked}</p>"
    if s.workers is None:
        workers = "<p>not asked yet (the answer comes within seconds)</p>"
    else:
        workers = _table(["pool", "workers"], [[p.name, str(len(p.workers))] for p in s.workers])
    cache = (f"<p>{pct(s.cache_hit_rate)}</p><p>{s.cache_hits} hits, {s.cache_misses} "
             "misses</p>")
    panels = [("Scheduled jobs", jobs, "jobs bad" if failing else "jobs"),
              ("Beat", beat_html, ""),
              ("Queues", queues, ""), ("Workers", workers, ""),
              ("Registry cache", cache, "")]
    return '<section class="system" aria-label="system">' + "".join(
        f'<div class="panel {cls}"><h3>{esc(title)}</h3>{body}</div>'
        for title, body, cls in panels) + "</section>"


def render_page(board: Dashboard) -> str:
    """The whole page."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(board.generated_at))
    spans = "".join(
        f'<a href="?span={name}"{" aria-current=page" if name == board.span.name else ""}>'
        f"{name}</a>" for name in SPANS)
    cards = "".join(card_html(c, board) for c in board.models) or \
        '<p class="empty">No models registered (`mlops register-all-models`).</p>'
    return ("<!DOCTYPE html>"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH_S}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light dark">'
            "<title>mlops: model health</title>"
            f'<link rel="stylesheet" href="{STYLE_PATH}"></head><body>'
            '<header class="top"><h1>Model health</h1>'
            f'<nav aria-label="span">{spans}</nav>'
            f'<p class="meta">{len(board.models)} models · read {when} UTC · '
            f"refreshes every {REFRESH_S} s · "
            '<a href="/metrics">/metrics</a> · <a href="/health">/health</a></p></header>'
            f"{system_html(board.system, board.generated_at)}"
            f'<main class="cards">{cards}</main></body></html>')
