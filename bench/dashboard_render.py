"""How long the dashboard page of `mlops serve` (``/``) takes with many models and a month of
history.

    .venv/bin/python bench/dashboard_render.py [--models 20] [--days 30] [--per-hour 100]
                                               [--renders 30] [--skip-http]

Registers ``--models`` models (copies of the built-in models' configurations under new names,
deployed to production) and writes their history the way the workers do
(``Ingestor.ingest_predictions`` in this process, one message per model and day): ``--per-hour``
labeled predictions with latencies in every hour of the last ``--days`` days, accuracy sliding
in the last two days for every third model, and 50 predictions still awaiting their label.
Then, per model: an auto-tuning application every 4 days (configuration revisions by the
auto-tuner, at their past times) and a rollback, an accuracy alert fired and resolved every
3 days and a drift alert firing under a silence; a monitoring and a degradation run; job runs.
Each span (day: 25 hour buckets, week: 169 hour buckets, month: 30 day buckets) is then drawn
``--renders`` times:

  * in-process: ``render_page(read_dashboard(...))``, what the server runs in its thread pool;
  * over HTTP: ``GET /?span=...`` against an ``mlops serve`` subprocess (Tornado, one connection
    per request), on the same Redis.

The first render of each kind is a warm-up and not timed. Target: one page with 20 models under
200 ms (median and p90). What a render reads is bounded by buckets, configuration changes and
alerts, never by the number of events: ``--per-hour`` changes the seeding time, not the render.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _harness import (
    Bench,
    log,
    machine_facts,
    phase,
    print_json,
    report_latencies,
    run_main,
    timed_calls,
)

TARGET_MS = 200.0
SPANS = ("day", "week", "month")
HOUR_S = 3600
DAY_S = 86400


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=20, help="models registered (default 20)")
    p.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    p.add_argument("--per-hour", type=int, default=100,
                   help="labeled predictions per model and hour (default 100)")
    p.add_argument("--renders", type=int, default=30, help="timed renders of each kind")
    p.add_argument("--skip-http", action="store_true", help="only the in-process renders")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder")
    args = p.parse_args()
    if not 1 <= args.models <= 500:
        p.error("--models must be between 1 and 500")
    if not 1 <= args.days <= 60:
        p.error("--days must be between 1 and 60")
    if not 1 <= args.per_hour <= 400:  # a message: 24 hours x 10 minutes x per-hour events
        p.error("--per-hour must be between 1 and 400")
    if not 1 <= args.renders <= 10_000:
        p.error("--renders must be between 1 and 10,000")
    return args


class Clock:
    """The services' clock, set back to write history at its time."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return time.time() if self.at is None else self.at


def feed(ingestor: Any, name: str, days: int, per_hour: int, slides: bool, seed: int) -> int:
    """``per_hour`` labeled predictions in each hour of the last ``days`` days (one message a
    day: the first ten minutes of each hour, within a message's 256 minutes)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    top = int(time.time() // HOUR_S) * HOUR_S
    sent = 0
    for day in range(days, 0, -1):
        hours = np.arange(day * 24, (day - 1) * 24, -1)
        ago = np.repeat(hours, per_hour)
        ts = top - ago * HOUR_S + 60.0 * (np.arange(ago.size) % 10) + 1
        score = np.round(rng.random(ago.size), 3)
        predicted = score >= 0.5
        accuracy = np.where(slides & (ago <= 48), 0.78, 0.93)
        right = rng.random(ago.size) < accuracy
        actual = np.where(right, predicted, ~predicted).astype(int)
        ingestor.ingest_predictions({
            "v": 1, "kind": "predictions", "batch_id": f"{name}-d{day}", "model": name,
            "n": int(ago.size), "score": score.tolist(), "actual": actual.tolist(),
            "timestamp": ts.tolist(),
            "latency_ms": rng.lognormal(1.6, 0.5, ago.size).round(2).tolist()})
        sent += int(ago.size)
    ingestor.ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": f"{name}-pending", "model": name, "n": 50,
        "score": [0.7] * 50, "prediction_id": [f"{name}-p{i}" for i in range(50)]})
    return sent + 50


def populate(redis_url: str, n_models: int, days: int, per_hour: int) -> int:
    """Register, deploy and write the history; returns the events ingested."""
    from mlops_tasks.alerts.model import Alert
    from mlops_tasks.ingest.pipeline import Ingestor
    from mlops_tasks.jobs import JOBS, recorded
    from mlops_tasks.monitoring.degradation import run_degradation
    from mlops_tasks.monitoring.performance import run_monitoring
    from mlops_tasks.registry.catalogue import builtin_models
    from mlops_tasks.services import Services
    from mlops_tasks.settings import Settings

    clock = Clock()
    svc = Services.connect(Settings.from_env(), redis_url, clock=clock)
    templates = builtin_models(svc.settings)
    ingestor = Ingestor(svc.settings, svc.registry, svc.raw, cache_ttl_s=0)
    now = time.time()
    events = 0
    for i in range(n_models):
        t = templates[i % len(templates)]
        name = f"{t.name}-{i:02d}"
        clock.at = now - (days + 1) * DAY_S
        svc.registry.register(name, t.version, t.config, actor="bench",
                              display_name=f"{t.display_name} {i:02d}")
        svc.registry.deploy(name, t.version, "production", actor="bench")
        clock.at = None
        events += feed(ingestor, name, days, per_hour, slides=i % 3 == 0, seed=i)
        base = float(t.config.decision_threshold)
        for k, ago in enumerate(range(days - 1, 0, -4)):
            clock.at = now - ago * DAY_S
            tuned = round(base + 0.01 * (k % 5 + 1), 3)
            svc.registry.set_config(name, actor="auto-tuner", action="auto-tune",
                                    changes=[("decision_threshold", tuned)], reason="bench")
        clock.at = now - DAY_S / 2
        if days > 1:  # a rollback needs a tuning to roll back (one every 4 days, from day 1)
            svc.registry.rollback_config(name, actor="bench")
        store = svc.alerts.store
        for ago in range(days - 2, 0, -3):
            clock.at = now - ago * DAY_S
            store.fire(Alert(name, t.version, "accuracy_below_threshold", "warning", "bench"))
            clock.at = now - ago * DAY_S + 3 * HOUR_S
            store.resolve(name, t.version, "accuracy_below_threshold")
        clock.at = now - 5 * HOUR_S
        store.fire(Alert(name, t.version, "data_drift", "warning", "bench drift"))
        store.add_silence(name, "data_drift", 8 * HOUR_S, "bench", "bench")
        clock.at = None
    for job in JOBS:
        with recorded(svc.redis, job.name):
            pass
    run_monitoring(svc)
    run_degradation(svc)
    return events


def main() -> int:
    args = parse_args()
    results: dict[str, Any] = {"benchmark": "dashboard_render", "machine": machine_facts(),
                               "models": args.models, "days": args.days,
                               "per_hour": args.per_hour, "renders": args.renders}
    log(f"machine: {results['machine']}")
    with Bench("dashboard_render", keep_tmp=args.keep_tmp) as bench:
        srv = bench.start_redis()
        env = bench.use_redis(srv)
        from mlops_tasks.reports.dashboard import read_dashboard
        from mlops_tasks.server.activity import TuningCounts
        from mlops_tasks.server.page import render_page
        from mlops_tasks.services import Services
        from mlops_tasks.settings import Settings

        with phase(f"{args.models} models, {args.days} days of {args.per_hour} events/h"):
            results["events"] = populate(srv.url, args.models, args.days, args.per_hour)
        svc = Services.connect(Settings.from_env(), srv.url)
        tuning = TuningCounts()
        kinds: dict[str, tuple[list[float], int]] = {}
        for span in SPANS:
            with phase(f"{args.renders} in-process renders, {span}"):
                kinds[f"in-process, {span}"] = timed_calls(
                    lambda span=span: render_page(read_dashboard(svc, span, tuning=tuning)),
                    args.renders)
        if not args.skip_http:
            get = bench.start_serve(env)
            for span in SPANS:
                with phase(f"{args.renders} GET /?span={span}"):
                    kinds[f"HTTP GET /?span={span}"] = timed_calls(
                        lambda span=span: get(f"/?span={span}"), args.renders)
    results["render"] = report_latencies(kinds, "render", TARGET_MS)
    print_json(results)
    return 0


if __name__ == "__main__":
    run_main(main)
