"""`mlops serve`: health endpoints and /metrics, against a real server process and real Redis."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .redis_server import free_port


def samples(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def test_live_ready_and_health_answer(serve: Any) -> None:
    """Given Redis up, live and ready answer 200 and /health holds check_health's document."""
    server = serve()
    assert server.get("/health/live") == (200, '{"status": "ok"}')
    assert server.get("/health/ready") == (200, '{"status": "ready"}')
    status, body = server.get("/health")
    # no beat and no workers here: unhealthy, with the reasons
    assert status == 503
    assert '"scheduler"' in body and '"queues"' in body and '"redis"' in body
    assert server.get("/health/redis")[0] == 200
    assert server.get("/health/nonsense")[0] == 404
    assert server.get("/health/scheduler")[0] == 503  # no beat leader


def test_ready_fails_when_redis_is_unreachable(serve: Any) -> None:
    """Given Redis on a closed port, ready is 503 while live stays 200."""
    server = serve(f"redis://127.0.0.1:{free_port()}/0")
    assert server.get("/health/live")[0] == 200
    started = time.monotonic()
    assert server.get("/health/ready")[0] == 503
    assert time.monotonic() - started < 10
    assert server.get("/health")[0] == 503


def test_metrics_hold_registered_models(serve: Any, ingestor: Any, tmp_path: Path) -> None:
    """Given events ingested for n1-detector, /metrics parses and holds its metrics."""
    n = 200
    ingestor.ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": "b1", "model": "n1-detector", "n": n,
        "score": [0.9 if i % 2 else 0.1 for i in range(n)],
        "actual": [i % 2 if i % 10 else 1 - i % 2 for i in range(n)]})
    server = serve()
    status, text = server.get("/metrics")
    assert status == 200, text
    found = samples(text)
    for name in ("mlops_model_accuracy", "mlops_model_precision", "mlops_model_recall",
                 "mlops_model_f1", "mlops_model_false_positive_rate"):
        windows = {s.labels["window"] for s in found[name]
                   if s.labels["model"] == "n1-detector"}
        assert windows == {"last_100", "last_1000", "since_deployment", "last_hour"}, name
    accuracy = {s.labels["window"]: s.value for s in found["mlops_model_accuracy"]
                if s.labels["model"] == "n1-detector"}
    assert accuracy["since_deployment"] == pytest.approx(0.9)
    assert accuracy["last_hour"] == pytest.approx(0.9)
    assert accuracy["last_100"] == pytest.approx(0.9)
    predictions = {s.labels["model"]: s.value for s in found["mlops_predictions_total"]}
    assert predictions["n1-detector"] == n
    assert {s.labels["model"] for s in found["mlops_decision_threshold"]} >= {
        "n1-detector", "waf-behavioral", "queue-anomaly"}
    for name in ("mlops_ground_truth_total", "mlops_pending_labels", "mlops_dead_letters_total",
                 "mlops_scheduler_job_consecutive_failures", "mlops_queue_depth",
                 "mlops_queue_unacked", "mlops_registry_cache_requests_total"):
        assert name in found, name
    promtool = shutil.which("promtool")
    if promtool:
        out = tmp_path / "metrics.txt"
        out.write_text(text)
        check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                               capture_output=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_basic_auth_guards_metrics_and_health(serve: Any) -> None:
    """Given MLOPS_SERVE_BASIC_AUTH, /metrics and /health need it; live and ready stay open."""
    server = serve(MLOPS_SERVE_BASIC_AUTH="ops:s3cret:x")
    for path in ("/metrics", "/health", "/health/redis"):
        assert server.get(path)[0] == 401, path
        assert server.get(path, auth="ops:wrong")[0] == 401, path
    assert server.get("/metrics", auth="ops:s3cret:x")[0] == 200
    assert server.get("/health/redis", auth="ops:s3cret:x")[0] == 200
    assert server.get("/health/live")[0] == 200
    assert server.get("/health/ready")[0] == 200


def by_labels(found: dict[str, list[Any]], name: str, *label: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[k] for k in label): s.value for s in found.get(name, [])}


def test_metrics_count_alerts_tuning_runs_and_job_runs(serve: Any, pipe: Any) -> None:
    """Given an alert fired, a tuning run applied and job runs recorded, /metrics counts them
    with their labels; a later tuning run is counted at the next scrape."""
    from mlops_tasks.alerts.model import Alert
    from mlops_tasks.jobs import recorded
    from mlops_tasks.tuning.engine import run_tuning

    from .test_tuning import feed_calibrated, the_run

    # given: one accuracy alert fired (and raised again: still one fired)
    alert = Alert("n1-detector", "1.0.0", "accuracy_below_threshold", "warning", "low")
    pipe.svc.alerts.raise_alert(alert)
    pipe.svc.alerts.raise_alert(Alert("n1-detector", "1.0.0", "accuracy_below_threshold",
                                      "warning", "still low"))
    pipe.svc.alerts.raise_alert(Alert("waf-behavioral", "1.0.0", "performance_degraded",
                                      "critical", "degraded"))
    # and an applied tuning run
    pipe.deploy("n1-detector")
    feed_calibrated(pipe, "n1-detector", 4000, best=0.75)
    run = the_run(run_tuning(pipe.svc), "n1-detector")
    assert run["applied"] is True
    # and job runs: two successes, one failure
    for ok in (True, True, False):
        with pytest.raises(RuntimeError) if not ok else contextlib.nullcontext(), \
                recorded(pipe.svc.redis, "ml-registry-cleanup"):
            if not ok:
                raise RuntimeError("boom")
    server = serve()
    # when scraped
    status, text = server.get("/metrics")
    assert status == 200, text
    found = samples(text)
    # then
    assert by_labels(found, "mlops_alerts_total", "model", "kind", "severity") == {
        ("n1-detector", "accuracy_below_threshold", "warning"): 1.0,
        ("n1-detector", "auto_tuning_applied", "info"): 1.0,  # an event: counted, not firing
        ("waf-behavioral", "performance_degraded", "critical"): 1.0}
    tuning = by_labels(found, "mlops_tuning_runs_total", "model", "applied")
    assert tuning[("n1-detector", "true")] == 1.0
    assert tuning[("n1-detector", "false")] == 0.0
    assert by_labels(found, "mlops_tuning_improvement_percent", "model") == {
        ("n1-detector",): pytest.approx(run["improvement_percent"])}
    jobs = by_labels(found, "mlops_scheduler_job_runs_total", "job", "outcome")
    assert jobs[("ml-registry-cleanup", "success")] == 2.0
    assert jobs[("ml-registry-cleanup", "failure")] == 1.0
    assert jobs[("ml-auto-tuning", "success")] == 0.0
    for family in text_string_to_metric_families(text):
        if family.name in ("mlops_alerts", "mlops_tuning_runs", "mlops_scheduler_job_runs"):
            assert family.type == "counter", family.name
    # when a second tuning run (not applied) is kept, the next scrape counts it and shows its
    # improvement
    second = the_run(run_tuning(pipe.svc), "n1-detector")
    assert second["applied"] is False
    found = samples(server.get("/metrics")[1])
    tuning = by_labels(found, "mlops_tuning_runs_total", "model", "applied")
    assert (tuning[("n1-detector", "true")], tuning[("n1-detector", "false")]) == (1.0, 1.0)
    assert by_labels(found, "mlops_tuning_improvement_percent", "model") == {
        ("n1-detector",): pytest.approx(second["improvement_percent"])}


def test_workers_alive_comes_from_the_last_answer_of_the_workers(
        redis_url: str, raw: Any) -> None:
    """Given workers answering that w1 consumes the monitoring queues only, the collector's
    mlops_workers_alive says 1 for monitoring and 0 for tuning, without a scrape waiting."""
    import redis as redis_lib
    from prometheus_client import generate_latest

    from mlops_tasks.server.liveness import LivenessCache
    from mlops_tasks.server.metrics import MlopsCollector, metrics_registry
    from mlops_tasks.settings import Settings

    asked: list[float] = []

    def active_queues() -> dict[str, list[str]]:
        asked.append(time.monotonic())
        return {"w1@host": ["monitoring", "ingest"], "w2@host": ["ingest"]}

    pools = {"monitoring": ["monitoring"], "tuning": ["tuning"]}
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    registry = metrics_registry(MlopsCollector(client, raw, None, Settings.from_env(),
                                               LivenessCache(pools, active_queues)))
    deadline = time.monotonic() + 10
    alive: dict[tuple[str, ...], float] = {}
    while not alive and time.monotonic() < deadline:
        text = generate_latest(registry).decode()
        alive = by_labels(samples(text), "mlops_workers_alive", "pool")
        time.sleep(0.05)
    assert alive == {("monitoring",): 1.0, ("tuning",): 0.0}
    assert len(asked) == 1  # asked once, in the background, for all these scrapes
