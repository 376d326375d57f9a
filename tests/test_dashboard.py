"""The dashboard of `mlops serve` (``/``): the numbers it shows are the CLI's, hostile text is
escaped, it needs the same credentials as /metrics, and a headless Chromium logs in and sees one
card per registered model with its accuracy and threshold lines.

Against the session's real Redis (history written through the worker's ingest pipeline, real
monitoring, degradation and registry calls on a fake clock), real `mlops serve` processes and
Debian's chromium. The browser's screenshots are kept in ``$MLOPS_TEST_ARTIFACTS`` (default
``<repo>/.artifacts/``).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_tasks.alerts.model import Alert
from mlops_tasks.reports.dashboard import read_dashboard
from mlops_tasks.reports.timeline import (
    IN_FORCE,
    SPANS,
    SilenceSpan,
    alert_spans,
    bucket_point,
    setting_steps,
)
from mlops_tasks.server.page import CONTENT_SECURITY_POLICY, render_page
from mlops_tasks.timefmt import from_iso, iso

from .processes import ServeProcess, http_get
from .redis_server import free_port
from .test_flower import CHROMIUM

USER, PASSWORD = "ops", "dash:b0ard"
REPO = Path(__file__).resolve().parents[1]
HOUR_S = 3600
DAY_S = 86400
BUILTIN = ("n1-detector", "queue-anomaly", "waf-behavioral")


# --- history, written the way the system writes it ----------------------------------------------

def feed_history(pipe: Any, model: str, hours: int, accuracy: float, *,
                 slide: tuple[int, float] | None = None, per_hour: int = 30,
                 unlabeled: int = 0, seed: int = 0) -> None:
    """``per_hour`` labeled predictions in each of the last ``hours`` hours (at the first ten
    minutes of each hour, so a message stays within its 256 minutes), with latencies, right
    with probability ``accuracy`` (``slide`` = (hours, accuracy): another accuracy over the
    last hours); then ``unlabeled`` predictions awaiting their labels."""
    rng = np.random.default_rng(seed)
    now = pipe.clock.now
    top = int(now // HOUR_S) * HOUR_S
    for first in range(hours, 0, -24):  # one message per day of history
        ts, score, actual, latency = [], [], [], []
        for ago in range(first, max(first - 24, 0), -1):
            start = top - ago * HOUR_S
            s = np.round(rng.random(per_hour), 3)
            predicted = s >= 0.5
            p = slide[1] if slide is not None and ago <= slide[0] else accuracy
            right = rng.random(per_hour) < p
            ts += (start + 60 * (np.arange(per_hour) % 10) + 1.0).tolist()
            score += s.tolist()
            actual += np.where(right, predicted, ~predicted).astype(int).tolist()
            latency += rng.lognormal(1.6, 0.5, per_hour).round(2).tolist()
        pipe.batches += 1
        pipe.ingestor.ingest_predictions({
            "v": 1, "kind": "predictions", "batch_id": f"history-{pipe.batches}",
            "model": model, "n": len(ts), "score": score, "actual": actual, "timestamp": ts,
            "latency_ms": latency})
    if unlabeled:
        pipe.batches += 1
        pipe.ingestor.ingest_predictions({
            "v": 1, "kind": "predictions", "batch_id": f"unlabeled-{pipe.batches}",
            "model": model, "n": unlabeled, "score": [0.7] * unlabeled,
            "prediction_id": [f"{model}-u{i}" for i in range(unlabeled)]})


def at(pipe: Any, ts: float, fn: Callable[[], Any]) -> Any:
    """``fn()`` with the registry's and the alert store's clocks at ``ts``."""
    svc = pipe.svc
    saved = svc.registry.clock, svc.alerts.store.clock
    svc.registry.clock = svc.alerts.store.clock = lambda: ts
    try:
        return fn()
    finally:
        svc.registry.clock, svc.alerts.store.clock = saved


def tune_and_roll_back(pipe: Any, model: str, *, tuned_ago_s: float, rolled_back_ago_s: float,
                       threshold: float) -> None:
    """An auto-tuning application (a revision by the auto-tuner) and a rollback of it."""
    now, reg = pipe.clock.now, pipe.svc.registry
    at(pipe, now - tuned_ago_s, lambda: reg.set_config(
        model, actor="auto-tuner", changes=[("decision_threshold", threshold)],
        action="auto-tune", reason=f"decision threshold -> {threshold} (f1 +3.1%)"))
    at(pipe, now - rolled_back_ago_s, lambda: reg.rollback_config(model, actor="ops"))


def fire_and_resolve(pipe: Any, model: str, kind: str, fired_ago_s: float,
                     resolved_ago_s: float | None, message: str = "accuracy low") -> None:
    store, now = pipe.svc.alerts.store, pipe.clock.now
    at(pipe, now - fired_ago_s, lambda: store.fire(Alert(model, "1.0.0", kind, "warning",
                                                         message)))
    if resolved_ago_s is not None:
        at(pipe, now - resolved_ago_s, lambda: store.resolve(model, "1.0.0", kind))


@pytest.fixture
def history(pipe: Any) -> Any:
    """The pipeline, with the catalogue registered five days ago (before its history, as in
    production) instead of now."""
    from .conftest import clear_project_keys
    from .test_registry import register_catalogue

    clear_project_keys(pipe.svc.redis)
    at(pipe, pipe.clock.now - 5 * DAY_S, lambda: register_catalogue(pipe.svc.registry))
    return pipe


def populate(pipe: Any) -> None:
    """Three days of the three built-in models: waf-behavioral sliding under its threshold
    (monitoring alerts), an auto-tuning application and its rollback on n1-detector, a drift
    alert silenced, resolved alerts, pending labels, job runs."""
    from mlops_tasks.jobs import recorded
    from mlops_tasks.monitoring.degradation import run_degradation
    from mlops_tasks.monitoring.performance import run_monitoring

    for name in ("n1-detector", "waf-behavioral"):
        pipe.deploy(name, ago_s=4 * DAY_S)
    feed_history(pipe, "n1-detector", 72, 0.93, unlabeled=40)
    feed_history(pipe, "waf-behavioral", 72, 0.95, slide=(30, 0.8), seed=1)
    feed_history(pipe, "queue-anomaly", 48, 0.88, per_hour=10, seed=2)
    tune_and_roll_back(pipe, "n1-detector", tuned_ago_s=40 * HOUR_S,
                       rolled_back_ago_s=20 * HOUR_S, threshold=0.62)
    fire_and_resolve(pipe, "n1-detector", "accuracy_below_threshold", 60 * HOUR_S, 55 * HOUR_S)
    fire_and_resolve(pipe, "waf-behavioral", "data_drift", 10 * HOUR_S, None, "drift")
    at(pipe, pipe.clock.now - 9 * HOUR_S, lambda: pipe.svc.alerts.store.add_silence(
        "waf-behavioral", "data_drift", 12 * HOUR_S, "known change", "ops"))
    for job in ("ml-performance-monitoring", "ml-degradation-detection"):
        with recorded(pipe.svc.redis, job):
            pass
    with pytest.raises(RuntimeError), recorded(pipe.svc.redis, "ml-auto-tuning"):
        raise RuntimeError("boom")
    run_monitoring(pipe.svc)
    run_degradation(pipe.svc)


# --- the data: what the CLI prints ----------------------------------------------------------------

def _same(a: Any, b: Any) -> bool:
    return a == b or (a is not None and b is not None and a == pytest.approx(b, rel=1e-12))


def test_the_cards_hold_the_numbers_the_cli_prints(history: Any, cli: Any) -> None:
    """Given three days of history, a tuning application and its rollback, alerts and job
    runs, when the dashboard is read over a month and over a day, then each card's series and
    figures are those of `performance-trends`, `daily-summary`, `performance-summary`,
    `alerts`, `audit-log` and `scheduler status` for the same data."""
    from mlops_tasks.reports import daily_summary

    pipe = history
    populate(pipe)
    pipe.clock.now = time.time()  # the CLI reads the wall clock
    month = read_dashboard(pipe.svc, "month")
    day = read_dashboard(pipe.svc, "day")

    assert [c.name for c in month.models] == list(BUILTIN)
    # what `mlops daily-summary --json` prints, on the same clock (its hour buckets)
    daily = {m["name"]: m for m in daily_summary(pipe.svc).to_dict()["models"]}
    summary = {m["name"]: m for m in cli.json("performance-summary")["models"]}
    for card, day_card in zip(month.models, day.models, strict=True):
        series = cli.json("performance-trends", card.name, "--days", "30")["series"]
        assert [p.predictions for p in card.points] == series["predictions"], card.name
        assert [p.labeled for p in card.points] == series["labeled"], card.name
        for metric in ("accuracy", "false_positive_rate"):
            assert [getattr(p, metric) for p in card.points] == series[metric], metric
        last_24h = daily[card.name]["last_24h"]
        for k in ("predictions", "count", "accuracy", "false_positive_rate", "avg_confidence",
                  "latency_p50_ms", "latency_p95_ms"):
            assert _same(day_card.span_metrics[k], last_24h[k]), (card.name, k)
        assert day_card.monitoring.word == (daily[card.name]["monitoring_status"]
                                            or "not checked")
        assert card.pending_labels == summary[card.name]["pending_labels"]
        assert card.dead_letters == summary[card.name]["dead_letters"]
        listed = cli.json("alerts", "--model", card.name, "--since", "30d")["alerts"]
        assert {a.id for a in card.alerts} == {a["id"] for a in listed}, card.name
    n1 = month.models[0]
    assert n1.pending_labels == 40
    # the decision threshold: in force, tuned to 0.62 by the auto-tuner, rolled back
    audit = [e for e in cli.json("audit-log", "n1-detector")["entries"]
             if e["action"] in ("auto-tune", "rollback-config")]
    initial = pipe.svc.registry.current("n1-detector")["config"]["decision_threshold"]
    steps = [(s.action, s.value) for s in n1.decision_threshold]
    assert steps == [("register", initial), ("auto-tune", 0.62), ("rollback-config", initial)]
    assert [s.at for s in n1.decision_threshold[1:]] == sorted(e["ts"] for e in audit)
    assert [s.value for s in n1.accuracy_threshold] == [0.85, 0.85]  # and the rollback
    # over the last day: the tuned threshold was in force at its start, then rolled back
    assert [(s.action, s.value) for s in day.models[0].decision_threshold] == [
        (IN_FORCE, 0.62), ("rollback-config", initial)]
    # waf-behavioral slid under its alert threshold: monitoring alerts, the drift is silenced
    waf = month.models[2]
    assert waf.monitoring.word == "alerting" and waf.monitoring.level == "bad"
    drift = next(a for a in waf.alerts if a.kind == "data_drift")
    assert drift.status == "firing" and drift.silenced
    assert {a.kind for a in waf.alerts if a.status == "firing"} == {
        "data_drift", "accuracy_below_threshold"}
    # the system strip: the scheduler as `mlops scheduler status` reads it
    status = cli.json("scheduler", "status")
    assert [(j.name, j.consecutive_failures, j.runs) for j in month.system.scheduler.jobs] == [
        (j["name"], j["consecutive_failures"], j["runs"]) for j in status["jobs"]]
    assert month.system.workers is None and month.system.queues is None


def test_the_day_and_week_spans_read_hour_buckets_and_the_month_day_buckets(pipe: Any) -> None:
    """Given history, a day is 25 hour buckets, a week 169, a month 30 days; a week's figures
    are the week's time window (``WindowReader.time_window``)."""
    from mlops_tasks.windows import counter_metrics

    pipe.deploy("n1-detector")
    feed_history(pipe, "n1-detector", 30, 0.9)
    spans = {name: read_dashboard(pipe.svc, name) for name in ("day", "week", "month")}
    assert [len(b.models[0].points) for b in spans.values()] == [25, 169, 30]
    assert {p.start % HOUR_S for p in spans["week"].models[0].points} == {0}
    assert {p.start % DAY_S for p in spans["month"].models[0].points} == {0}
    week = spans["week"].models[0]
    window = pipe.svc.windows.time_window("n1-detector", "1.0.0", 7 * DAY_S,
                                          with_hist=False).counts
    assert week.span_metrics == counter_metrics(window)
    assert week.span_metrics["count"] == 30 * 30


def test_each_card_names_cli_commands_that_exist(pipe: Any) -> None:
    """The commands a card lists (the same numbers in the CLI) parse as real `mlops`
    commands, for every span."""
    from .test_docs import check_command

    for span in ("day", "week", "month"):
        for card in read_dashboard(pipe.svc, span).models:
            for command in card.commands(SPANS[span]):
                words = command.split()
                assert words[0] == "mlops"
                assert check_command(words[1:]) == [], command


@pytest.mark.parametrize(("counts", "expected"), [
    ({}, (0, 0, None, None, None)),
    ({"n": 10, "labeled": 4, "tp": 1, "fp": 1, "tn": 2, "fn": 0, "score_sum": 2.0},
     (10, 4, 0.75, 1 / 3, 0.5)),
    ({"n": 3, "labeled": 0}, (3, 0, None, None, None)),
])
def test_a_bucket_point_is_counter_metrics_of_its_bucket(counts: dict[str, float],
                                                         expected: tuple[Any, ...]) -> None:
    """One bucket's accuracy, false-positive rate and mean confidence use the windows'
    formulas (None for 0/0)."""
    from mlops_tasks.windows import counter_metrics

    p = bucket_point(0, counts)
    assert (p.predictions, p.labeled, p.accuracy, p.false_positive_rate,
            p.avg_confidence) == expected
    m = counter_metrics(counts)
    assert (p.accuracy, p.false_positive_rate, p.avg_confidence) == (
        m["accuracy"], m["false_positive_rate"], m["avg_confidence"])


def _entry(ts: float, action: str, before: float | None, after: float,
           version: str = "1.0.0") -> dict[str, Any]:
    return {"ts": ts, "action": action, "version": version, "actor": "a", "reason": None,
            "before": None if before is None else {"decision_threshold": before},
            "after": {"decision_threshold": after}}


@pytest.mark.parametrize(("entries", "current", "expected"), [
    ([], 0.5, [(100.0, IN_FORCE, 0.5)]),
    ([_entry(50, "auto-tune", 0.4, 0.5)], 0.5, [(100.0, IN_FORCE, 0.5)]),  # before the span
    ([_entry(150, "auto-tune", 0.5, 0.6), _entry(170, "rollback-config", 0.6, 0.5)], 0.5,
     [(100.0, IN_FORCE, 0.5), (150.0, "auto-tune", 0.6), (170.0, "rollback-config", 0.5)]),
    ([_entry(120, "register", None, 0.7), _entry(130, "update-config", 0.7, 0.7)], 0.7,
     [(120.0, "register", 0.7)]),  # registered in the span; a change of another field
    ([_entry(150, "auto-tune", 0.5, 0.6, version="2.0.0")], 0.5, [(100.0, IN_FORCE, 0.5)]),
    ([_entry(150, "deploy", 0.5, 0.6)], 0.5, [(100.0, IN_FORCE, 0.5)]),
])
def test_setting_steps_follow_the_audit_trail(entries: list[dict[str, Any]], current: float,
                                              expected: list[tuple[float, str, float]]) -> None:
    """The value in force at the span's start, then each audited change of it in the span."""
    steps = setting_steps(entries, "1.0.0", "decision_threshold", current, since=100.0)
    assert [(s.at, s.action, s.value) for s in steps] == expected


def test_alert_spans_mark_what_a_silence_covered() -> None:
    """An alert that a silence of its kind (or of every kind) overlapped is silenced; one
    resolved before the span is left out; a firing one has no end."""
    def alert(i: str, kind: str, fired: float, resolved: float | None) -> dict[str, Any]:
        return {"id": i, "kind": kind, "severity": "warning", "message": "m",
                "status": "resolved" if resolved else "firing", "fired_at": iso(fired),
                "resolved_at": iso(resolved) if resolved else None}
    silences = (SilenceSpan("data_drift", 1000.0, 2000.0, None),
                SilenceSpan(None, 5000.0, 6000.0, None))
    spans = alert_spans([alert("a", "data_drift", 900, None), alert("b", "x", 1500, 1800),
                         alert("c", "x", 4000, 5100), alert("d", "x", 100, 200),
                         alert("e", "data_drift", 2500, 2600)],
                        silences, since=1000.0, parse_time=from_iso)
    assert [(s.id, s.silenced, s.end) for s in spans] == [
        ("a", True, None), ("b", False, 1800.0), ("e", False, 2600.0), ("c", True, 5100.0)]


# --- the page: escaping -----------------------------------------------------------------------

class _Elements(HTMLParser):
    """Every start tag and its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_hostile_display_names_alert_messages_and_reasons_are_escaped(pipe: Any) -> None:
    """Given a display name, an alert message, a silence reason and a job error holding
    markup, when the page is drawn, then no element or attribute comes from them: the text
    shows escaped and the page has no script, no event handler and no external URL."""
    from mlops_tasks.jobs import recorded
    from mlops_tasks.registry import ModelConfig

    from .test_prometheus import CUSTOM

    template = pipe.svc.registry.current("n1-detector")["config"]
    pipe.svc.registry.register(CUSTOM[0], "1.0.0", ModelConfig.from_dict(template),
                               actor="test", display_name=HOSTILE)
    feed_history(pipe, CUSTOM[0], 3, 0.9)
    store = pipe.svc.alerts.store
    store.fire(Alert(CUSTOM[0], "1.0.0", "data_drift", "warning", HOSTILE))
    store.add_silence(CUSTOM[0], None, 600, HOSTILE, HOSTILE)
    with pytest.raises(RuntimeError), recorded(pipe.svc.redis, "ml-auto-tuning"):
        raise RuntimeError(HOSTILE)
    page = render_page(read_dashboard(pipe.svc, "week"))

    parsed = _Elements()
    parsed.feed(page)
    tags = {tag for tag, _ in parsed.tags}
    assert "script" not in tags and "img" not in tags
    for tag, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src"):
            value = attrs.get(name) or ""
            assert not value.startswith(("http:", "https:", "//", "javascript:")), (tag, value)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE not in page
    assert page.count('<article class="card"') == 4


# --- the server: authentication, headers, failures ------------------------------------------------

def _get(server: ServeProcess, path: str, auth: str | None = None) -> Any:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the test's server
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def test_the_page_needs_the_credentials_of_metrics(pipe: Any, serve: Any) -> None:
    """Given MLOPS_SERVE_BASIC_AUTH, the page and its style sheet answer 401 with a challenge
    to no or wrong credentials, and name no model; with them, the page comes with a policy
    that allows nothing from elsewhere, and an unknown span is a 400."""
    server = serve(MLOPS_SERVE_BASIC_AUTH=f"{USER}:{PASSWORD}")
    for path in ("/", "/?span=month", "/static/dashboard.css"):
        for auth in (None, f"{USER}:wrong"):
            status, headers, body = _get(server, path, auth)
            assert status == 401, (path, auth)
            assert headers["WWW-Authenticate"] == 'Basic realm="mlops"'
            assert "n1-detector" not in body
    status, headers, body = _get(server, "/", f"{USER}:{PASSWORD}")
    assert status == 200, body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY  # none: default-src 'none' holds
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert body.count('<article class="card"') == len(BUILTIN)
    status, headers, css = _get(server, "/static/dashboard.css", f"{USER}:{PASSWORD}")
    assert status == 200 and headers["Content-Type"] == "text/css; charset=utf-8"
    assert "prefers-color-scheme: dark" in css and "url(" not in css and "@import" not in css
    assert _get(server, "/?span=year", f"{USER}:{PASSWORD}")[0] == 400


def test_without_credentials_configured_the_page_is_open_like_metrics(
        pipe: Any, serve: Any) -> None:
    """Given no MLOPS_SERVE_BASIC_AUTH, / answers like /metrics does: 200."""
    server = serve()
    assert server.get("/metrics")[0] == 200
    status, _, body = _get(server, "/?span=day")
    assert status == 200 and body.count('<article class="card"') == len(BUILTIN)


def test_the_page_is_a_503_when_redis_is_unreachable(serve: Any) -> None:
    """Given Redis on a closed port, / answers 503 within the probes' timeout."""
    server = serve(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    status, _ = http_get(f"http://127.0.0.1:{server.port}/")
    assert status == 503
    assert time.monotonic() - started < 15


# --- the browser ------------------------------------------------------------------------------

@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("MLOPS_TEST_ARTIFACTS") or REPO / ".artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_browser_logs_in_and_sees_one_card_per_model_with_its_lines(
        history: Any, serve: Any, artifacts: Path) -> None:
    """Given three days of history and `mlops serve` behind basic auth, when headless
    Chromium opens / without credentials it is refused; logged in, it shows one card per
    registered model, each with an accuracy line and an alert-threshold line, styled by the
    page's own style sheet with nothing blocked by the policy; screenshots (light and dark)
    are kept as test artifacts."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (Debian's chromium package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    pipe = history
    populate(pipe)
    server = serve(MLOPS_SERVE_BASIC_AUTH=f"{USER}:{PASSWORD}")
    url = f"http://127.0.0.1:{server.port}/?span=week"
    names = pipe.svc.registry.model_names()
    timeout_ms = 60_000
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            anonymous = browser.new_context().request.get(url, timeout=timeout_ms)
            assert anonymous.status == 401 and "n1-detector" not in anonymous.text()

            context = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD},
                viewport={"width": 1400, "height": 1360}, color_scheme="light")
            context.set_default_timeout(timeout_ms)
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text)
                    if "Content Security Policy" in m.text else None)
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            response = page.goto(url)
            assert response is not None and response.status == 200
            cards = page.locator("article.card")
            expect(cards).to_have_count(len(names))
            assert [cards.nth(i).get_attribute("data-model") for i in range(len(names))] == names
            for i in range(len(names)):
                card = cards.nth(i)
                chart = card.locator("svg.accuracy-chart")
                expect(chart).to_be_visible()
                # both lines drawn across the chart (a flat line has no height: measure width)
                for series in ('[data-series="accuracy"] polyline',
                               '[data-series="accuracy-threshold"] path'):
                    mark = chart.locator(series).first
                    expect(mark).to_be_attached()
                    assert mark.evaluate("e => e.getBBox().width") > 50, (names[i], series)
            # the style sheet applied: charts are drawn with the page's colours, not black
            stroke = page.locator('[data-series="accuracy"] polyline').first.evaluate(
                "e => getComputedStyle(e).stroke")
            assert stroke not in ("none", "rgb(0, 0, 0)"), stroke
            assert problems == []
            page.screenshot(path=artifacts / "dashboard.png", full_page=False)
            page.emulate_media(color_scheme="dark")
            page.screenshot(path=artifacts / "dashboard-dark.png", full_page=True)
            headers = response.all_headers()
            assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        finally:
            browser.close()
    assert json.loads(server.get("/health/live")[1]) == {"status": "ok"}
