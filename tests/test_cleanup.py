"""The cleanup job deletes only what is old, in batches, and never the registry or audit trail."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import redis

from mlops_tasks import keys
from mlops_tasks.errors import NotFoundError
from mlops_tasks.ingest.pipeline import Ingestor
from mlops_tasks.maintenance.cleanup import cleanup
from mlops_tasks.timebuckets import DAY_S

from .pipeline_support import Pipeline

MODEL = "n1-detector"


def registry_snapshot(r: redis.Redis) -> dict[str, bytes]:
    """Every registry, deployment and audit key, dumped."""
    out = {}
    for pattern in ("mlops:models", "mlops:{*}:meta", "mlops:{*}:versions", "mlops:{*}:rev:*",
                    "mlops:{*}:deploy*", "mlops:{*}:audit", "mlops:{*}:epoch"):
        for key in r.scan_iter(pattern):
            out[key] = r.dump(key)
    return out


def old_ingestor(pipe: Pipeline, days_ago: float) -> Ingestor:
    then = pipe.clock.now - days_ago * DAY_S
    return Ingestor(pipe.svc.settings, pipe.svc.registry, pipe.svc.raw, clock=lambda: then,
                    cache_ttl_s=0)


def test_cleanup_deletes_only_what_is_old(pipe: Pipeline, raw: redis.Redis, r: redis.Redis,
                                          cli) -> None:
    pipe.deploy(MODEL)
    pipe.svc.registry.set_config(MODEL, actor="ops", changes=[("decision_threshold", 0.65)])
    scores = np.linspace(0.05, 0.95, 200).tolist()
    # 40 days ago: labeled outcomes in day buckets (minute and hour buckets are long gone)
    old = old_ingestor(pipe, 40)
    old.ingest_predictions({"v": 1, "kind": "predictions", "batch_id": "old", "model": MODEL,
                            "n": 200, "score": scores, "actual": [1] * 200})
    # 10 days ago: predictions still waiting for a label, older than the 7-day label TTL
    old_ingestor(pipe, 10).ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": "stale", "model": MODEL, "n": 50,
        "score": scores[:50], "prediction_id": [f"stale-{i}" for i in range(50)]})
    # now: recent outcomes and fresh pending predictions
    pipe.feed(MODEL, 300, 0.9)
    pipe.ingestor.ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": "fresh", "model": MODEL, "n": 20,
        "score": scores[:20], "prediction_id": [f"fresh-{i}" for i in range(20)]})
    # old and new dead letters, alert history, tuning history, notifications
    for at in (pipe.clock.now - 40 * DAY_S, pipe.clock.now):
        r.lpush(keys.dead_letters(MODEL), json.dumps({"at": at, "reason": "x"}))
        r.lpush(keys.alerts_history(MODEL), json.dumps({"at": at, "id": "a", "event": "fired"}))
        r.lpush(keys.NOTIFICATIONS, json.dumps({"at": at, "result": "sent"}))
        r.lpush(keys.tuning_history(MODEL), json.dumps({"ran_at": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)), "model": MODEL}))
    before_registry = registry_snapshot(r)
    old_day_keys = [k for k in raw.scan_iter(b"mlops:{n1-detector}:agg:1.0.0:d:*")
                    if int(k.rsplit(b":", 1)[1]) < pipe.clock.now - 30 * DAY_S]
    assert old_day_keys
    assert pipe.svc.windows.pending(MODEL) == 70

    dry = cleanup(pipe.svc, 30 * DAY_S, dry_run=True)
    assert dry["deleted"]["aggregate_buckets"] == 2  # the day's agg hash and its histogram
    assert dry["deleted"]["expired_pending_labels"] == 50
    assert dry["deleted"]["dead_letters"] == 1 and dry["deleted"]["alert_history"] == 1
    assert dry["deleted"]["tuning_history"] == 1 and dry["deleted"]["notifications"] == 1
    assert all(raw.exists(k) for k in old_day_keys)  # a dry run deletes nothing
    assert pipe.svc.windows.pending(MODEL) == 70

    doc = cli.json("cleanup-old-data", "--older-than", "30days")
    assert doc["deleted"] == dry["deleted"]
    assert not any(raw.exists(k) for k in old_day_keys)
    assert pipe.svc.windows.pending(MODEL) == 20
    assert pipe.svc.windows.counters(MODEL)["expired_pending"] == 50
    assert r.llen(keys.dead_letters(MODEL)) == 1
    # the recent notification stays, after the log line that announced this cleanup
    assert [n.get("kind") for n in pipe.svc.alerts.store.notifications()] == [
        "cleanup_completed", None]
    # recent data untouched, and a label for an expired prediction is an orphan
    assert pipe.svc.windows.time_window(MODEL, "1.0.0", 3600, with_hist=False) \
        .counts["labeled"] == 300
    result = pipe.ingestor.ingest_labels({
        "v": 1, "kind": "labels", "batch_id": "late", "model": MODEL, "n": 2,
        "prediction_id": ["stale-1", "fresh-1"], "actual": [1, 1]})
    assert (result["joined"], result["orphans"]) == (1, 1)
    assert registry_snapshot(r) == before_registry
    assert cleanup(pipe.svc, 30 * DAY_S)["deleted"]["aggregate_buckets"] == 0


def old_data(pipe: Pipeline, r: redis.Redis, model: str, days_ago: float) -> None:
    """Labeled outcomes, pending predictions and a dead letter of ``model``, ``days_ago``."""
    old_ingestor(pipe, days_ago).ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": f"old-{model}", "model": model, "n": 10,
        "score": [0.5] * 10, "actual": [1] * 10})
    old_ingestor(pipe, days_ago).ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": f"stale-{model}", "model": model, "n": 5,
        "score": [0.5] * 5, "prediction_id": [f"{model}-{i}" for i in range(5)]})
    r.lpush(keys.dead_letters(model), json.dumps({"at": pipe.clock.now - days_ago * DAY_S}))


def day_buckets(raw: redis.Redis, model: str) -> list[bytes]:
    return list(raw.scan_iter(f"mlops:{{{model}}}:agg:1.0.0:d:*".encode()))


def test_cleanup_of_one_model_leaves_every_other_alone(pipe: Pipeline, raw: redis.Redis,
                                                       r: redis.Redis) -> None:
    """Given old data of two models and an old notification, when cleanup runs for one
    model, then only that model's old data goes; the other model's, and the shared
    notification log and silences, stay for a run over every model."""
    for m in (MODEL, "waf-behavioral"):
        pipe.deploy(m)
        old_data(pipe, r, m, 40)
    r.lpush(keys.NOTIFICATIONS, json.dumps({"at": pipe.clock.now - 40 * DAY_S}))
    assert day_buckets(raw, MODEL) and day_buckets(raw, "waf-behavioral")

    report = cleanup(pipe.svc, 30 * DAY_S, model=MODEL)
    assert report["model"] == MODEL and report["models"] == 1
    assert report["deleted"]["aggregate_buckets"] == 2
    assert report["deleted"]["expired_pending_labels"] == 5
    assert report["deleted"]["dead_letters"] == 1
    assert report["deleted"]["notifications"] == 0 and report["deleted"]["silences"] == 0
    assert day_buckets(raw, MODEL) == [] and r.llen(keys.dead_letters(MODEL)) == 0
    assert len(day_buckets(raw, "waf-behavioral")) == 1
    assert pipe.svc.windows.pending("waf-behavioral") == 5
    assert r.llen(keys.dead_letters("waf-behavioral")) == 1
    # the old notification stays, after the log line that announced this cleanup
    assert [n.get("kind") for n in pipe.svc.alerts.store.notifications()] == [
        "cleanup_completed", None]

    everything = cleanup(pipe.svc, 30 * DAY_S)
    assert everything["model"] is None
    assert everything["deleted"]["aggregate_buckets"] == 2
    assert everything["deleted"]["notifications"] == 1
    assert day_buckets(raw, "waf-behavioral") == []


def test_cleanup_of_an_unknown_model_is_refused(pipe: Pipeline, cli) -> None:
    with pytest.raises(NotFoundError, match="model 'ghost' is not registered"):
        cleanup(pipe.svc, 30 * DAY_S, model="ghost")
    result = cli("run", "cleanup", "--model", "ghost", expect=1)
    assert result.stderr.strip().splitlines()[0].startswith(
        "error: model 'ghost' is not registered")


def test_run_cleanup_through_the_queue(worker, pipe: Pipeline, cli, raw: redis.Redis,
                                       r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    # dead letters by MLOPS_RETENTION_DAYS here (their own, shorter retention: test_tracked_data)
    monkeypatch.setenv("MLOPS_DEAD_LETTER_RETENTION_DAYS", "365")
    report = cli.json("run", "cleanup", "--wait", "--timeout", "30")
    assert report["dry_run"] is False and "aggregate_buckets" in report["deleted"]
    # `--model` reaches the worker: only that model's old data goes (the worker's cutoff is
    # MLOPS_RETENTION_DAYS, pending predictions expire after the 7-day label TTL)
    for m in (MODEL, "waf-behavioral"):
        r.lpush(keys.dead_letters(m), json.dumps({"at": pipe.clock.now - 400 * DAY_S}))
        old_data(pipe, r, m, 40)  # newest first: the 400-day-old letter is the list's tail
    one = cli.json("run", "cleanup", "--model", "waf-behavioral", "--wait", "--timeout", "30")
    assert one["model"] == "waf-behavioral"
    assert (one["deleted"]["expired_pending_labels"], one["deleted"]["dead_letters"]) == (5, 1)
    assert pipe.svc.windows.pending("waf-behavioral") == 0
    assert pipe.svc.windows.pending(MODEL) == 5 and r.llen(keys.dead_letters(MODEL)) == 2
    status = cli.json("scheduler", "status")
    job = next(j for j in status["jobs"] if j["name"] == "ml-registry-cleanup")
    assert job["last_success_at"] and job["consecutive_failures"] == 0


def test_cleanup_rejects_a_bad_duration(cli) -> None:
    result = cli("cleanup-old-data", "--older-than", "ninety", expect=1)
    assert result.stderr.strip() == ("error: --older-than: expected a duration such as 90s, "
                                     "15m, 2h or 7d, got 'ninety'")


def test_cleanup_leaves_young_data_alone(pipe: Pipeline) -> None:
    pipe.deploy(MODEL)
    pipe.feed(MODEL, 100, 0.9)
    report = cleanup(pipe.svc, 3 * DAY_S)
    assert sum(report["deleted"].values()) == 0
    assert pipe.svc.windows.totals(MODEL, "1.0.0")["labeled"] == 100
