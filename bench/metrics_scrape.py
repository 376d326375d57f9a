"""How long one /metrics scrape of `mlops serve` takes with many registered models.

    .venv/bin/python bench/metrics_scrape.py [--models 50] [--events 2000] [--scrapes 50]

Registers ``--models`` models (copies of n1-detector's built-in configuration under new names,
deployed to production), ingests ``--events`` labeled predictions for each, spread over the last
hour (``Ingestor.ingest_predictions`` in this process, 20 batches per model), fires one alert
and writes one tuning run per model, then times ``--scrapes`` scrapes:

  * in-process: ``generate_latest`` on the collector's own registry (what the server does);
  * over HTTP: ``GET /metrics`` against an ``mlops serve`` subprocess (Tornado, one connection
    per request), on the same Redis.

The first scrape of each kind is a warm-up and not timed (it registers the Lua scripts and
counts the tuning histories). Target: one scrape with 50 models under 100 ms (median and p90).
No worker is started; the server's worker-liveness question runs in the background and never
in a scrape.
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

TARGET_MS = 100.0
TEMPLATE = "n1-detector"
BATCHES = 20


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=50, help="models registered (default 50)")
    p.add_argument("--events", type=int, default=2000,
                   help="labeled events per model over the last hour (default 2000)")
    p.add_argument("--scrapes", type=int, default=50, help="timed scrapes of each kind")
    p.add_argument("--skip-http", action="store_true", help="only the in-process scrapes")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder")
    args = p.parse_args()
    if not 1 <= args.models <= 1000:
        p.error("--models must be between 1 and 1000")
    if not BATCHES <= args.events <= 1_000_000:
        p.error(f"--events must be between {BATCHES} and 1,000,000")
    if not 1 <= args.scrapes <= 10_000:
        p.error("--scrapes must be between 1 and 10,000")
    return args


def populate(redis_url: str, n_models: int, events: int) -> list[str]:
    """Register, deploy and feed the models; one alert and one tuning run each."""
    import numpy as np

    from mlops_tasks.alerts.model import Alert
    from mlops_tasks.ingest.pipeline import Ingestor
    from mlops_tasks.registry.catalogue import builtin_models
    from mlops_tasks.services import Services
    from mlops_tasks.settings import Settings
    from mlops_tasks.tuning.engine import run_tuning

    svc = Services.connect(Settings.from_env(), redis_url)
    template = next(e for e in builtin_models(svc.settings) if e.name == TEMPLATE)
    ingestor = Ingestor(svc.settings, svc.registry, svc.raw, cache_ttl_s=0)
    names = [f"bench-model-{i:03d}" for i in range(n_models)]
    rng = np.random.default_rng(0)
    now = time.time()
    per = events // BATCHES
    for name in names:
        svc.registry.register(name, template.version, template.config, actor="bench")
        svc.registry.deploy(name, template.version, "production", actor="bench")
        for b in range(BATCHES):
            scores = np.round(rng.random(per), 3)
            actual = (scores >= 0.6) ^ (rng.random(per) < 0.1)
            ingestor.ingest_predictions({
                "v": 1, "kind": "predictions", "batch_id": f"{name}-{b}", "model": name,
                "n": per, "score": scores.tolist(), "actual": actual.astype(int).tolist(),
                "timestamp": now - 3600 + (b + 0.5) * 3600 / BATCHES})
        svc.alerts.raise_alert(Alert(name, template.version, "accuracy_below_threshold",
                                     "warning", "bench"))
    run_tuning(svc)
    return names


def main() -> int:
    args = parse_args()
    results: dict[str, Any] = {"benchmark": "metrics_scrape", "machine": machine_facts(),
                               "models": args.models, "events_per_model": args.events,
                               "scrapes": args.scrapes}
    log(f"machine: {results['machine']}")
    with Bench("metrics_scrape", keep_tmp=args.keep_tmp) as bench:
        srv = bench.start_redis()
        env = bench.use_redis(srv)
        from prometheus_client import generate_latest

        from mlops_tasks.connection import connect
        from mlops_tasks.server.metrics import MlopsCollector, metrics_registry
        from mlops_tasks.settings import Settings

        with phase(f"{args.models} models, {args.events} labeled events each"):
            populate(srv.url, args.models, args.events)
        registry = metrics_registry(MlopsCollector(
            connect(srv.url), connect(srv.url, decode=False), connect(srv.url),
            Settings.from_env()))
        kinds: dict[str, tuple[list[float], int]] = {}
        with phase(f"{args.scrapes} in-process scrapes"):
            kinds["in-process generate_latest"] = timed_calls(
                lambda: generate_latest(registry), args.scrapes)
        if not args.skip_http:
            get = bench.start_serve(env)
            with phase(f"{args.scrapes} scrapes of GET /metrics"):
                kinds["HTTP GET /metrics (mlops serve)"] = timed_calls(
                    lambda: get("/metrics"), args.scrapes)
    results["scrape"] = report_latencies(kinds, "scrape", TARGET_MS)
    print_json(results)
    return 0


if __name__ == "__main__":
    run_main(main)
