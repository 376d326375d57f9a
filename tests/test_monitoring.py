"""Monitoring, degradation detection and alerting on real streams through the real pipeline."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from mlops_tasks import keys
from mlops_tasks.alerts.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from mlops_tasks.monitoring.degradation import run_degradation, set_baseline
from mlops_tasks.monitoring.degradation import verify as verify_degradation
from mlops_tasks.monitoring.performance import run_monitoring

from .conftest import wait_for
from .pipeline_support import Pipeline
from .processes import project_env
from .redis_server import RedisServer


def status(result: dict[str, Any], model: str) -> dict[str, Any]:
    return next(m for m in result["models"] if m["name"] == model)


def test_a_healthy_model_raises_nothing(pipe: Pipeline) -> None:
    pipe.deploy("n1-detector")
    pipe.feed("n1-detector", 800, 0.93)
    result = run_monitoring(pipe.svc)
    assert status(result, "n1-detector")["status"] == "monitored"
    assert pipe.active() == [] and pipe.dispatched == []


def test_too_few_labels_is_insufficient_data_not_an_alert(pipe: Pipeline) -> None:
    pipe.deploy("n1-detector")
    pipe.feed("n1-detector", 50, 0.2)
    assert status(run_monitoring(pipe.svc), "n1-detector")["status"] == "insufficient_data"
    assert pipe.active() == []


def test_an_accuracy_drop_alerts_once_repeats_after_the_interval_and_resolves(
        pipe: Pipeline, caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    pipe.deploy("n1-detector")
    pipe.deploy("waf-behavioral")
    pipe.feed("n1-detector", 1000, 0.785)
    pipe.feed("waf-behavioral", 1000, 0.95)
    with caplog.at_level(logging.INFO):
        first = run_monitoring(pipe.svc)
    n1 = status(first, "n1-detector")
    assert n1["status"] == "alerting" and n1["alert"]["notified"] is True
    assert status(first, "waf-behavioral")["status"] == "monitored"
    warnings = [r for r in caplog.records if r.name == "mlops.alerts"]
    assert [r.getMessage() for r in warnings] == [
        "N+1 Detector Performance Warning: Accuracy dropped to 78.50%"]
    assert warnings[0].levelno == logging.WARNING
    assert "N+1 Detector status: alerting (accuracy: 0.79)" in caplog.text
    assert "Performance monitoring executed successfully" in caplog.text
    alert = pipe.active()[0]
    assert (alert["model"], alert["kind"], alert["severity"]) == (
        "n1-detector", "accuracy_below_threshold", "warning")
    assert alert["values"]["accuracy"] == pytest.approx(0.785)

    # Within the repeat interval: recorded, not sent again.
    pipe.clock.now += 600
    again = status(run_monitoring(pipe.svc), "n1-detector")
    assert again["alert"] == {"id": alert["id"], "notified": False, "reason": "suppressed"}
    # After it: sent again.
    pipe.clock.now += pipe.svc.settings.alert_repeat_interval_s
    assert status(run_monitoring(pipe.svc), "n1-detector")["alert"]["reason"] == "repeat"

    # Recovery resolves it, with one resolved notification.
    pipe.feed("n1-detector", 1000, 0.95)
    log = pipe.svc.alerts.store
    before = len(log.notifications())
    assert status(run_monitoring(pipe.svc), "n1-detector")["status"] == "monitored"
    run_monitoring(pipe.svc)
    sent = log.notifications()[: len(log.notifications()) - before]
    assert [n["status"] for n in sent] == ["resolved"]
    assert pipe.active() == []


def test_a_severity_rise_is_sent_at_once(pipe: Pipeline) -> None:
    pipe.deploy("n1-detector")
    pipe.feed("n1-detector", 1000, 0.7)
    run_monitoring(pipe.svc)
    pipe.svc.registry.set_config("n1-detector", actor="t", changes=[("severity", "critical")])
    pipe.clock.now += 60
    assert status(run_monitoring(pipe.svc), "n1-detector")["alert"]["reason"] == "escalated"


def test_one_failing_model_does_not_stop_the_others(pipe: Pipeline, raw,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    for m in ("n1-detector", "waf-behavioral"):
        pipe.deploy(m)
        pipe.feed(m, 200, 0.95)
    raw.lpush(keys.recent("waf-behavioral", "1.0.0"), b"garbage")  # unreadable outcome
    with caplog.at_level(logging.INFO):
        result = run_monitoring(pipe.svc)
    assert status(result, "waf-behavioral")["status"] == "failed"
    assert status(result, "n1-detector")["status"] == "monitored"
    failed = [r for r in caplog.records if r.getMessage() == "monitoring failed"]
    assert failed and failed[0].model == "waf-behavioral"


def test_a_drop_is_flagged_only_when_it_is_significant(pipe: Pipeline,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Given baselines of 85% on 1,000 predictions after deployment, an 80% interval on 100
    predictions is not flagged, while 80% on 20,000 predictions is: p below the level that
    the false-alarm budget gives each window."""
    for m in ("n1-detector", "waf-behavioral"):
        pipe.deploy(m, ago_s=7200)
        pipe.feed(m, 1000, 0.85, at=pipe.clock.now - 7000)
    pipe.feed("n1-detector", 100, 0.80)
    pipe.feed("waf-behavioral", 20000, 0.80)
    pipe.clock.now += 60  # a check reads whole minutes
    with caplog.at_level(logging.INFO):
        result = run_degradation(pipe.svc)
    n1, waf = status(result, "n1-detector"), status(result, "waf-behavioral")
    assert n1["baseline"]["labeled"] == 1000 and n1["baseline"]["accuracy"] == 0.85
    assert n1["current"]["labeled"] == 100 and n1["window_checks"] == 1
    assert n1["status"] == "ok" and n1["p_value"] > 0.05
    assert n1["alpha"] == pytest.approx(1 / (2880 * 4))
    assert "no drop beyond 0.5% shown" in n1["reason"]
    assert waf["status"] == "degraded" and waf["p_value"] < waf["alpha"]
    assert waf["degradation_percent"] == pytest.approx(5.882, abs=0.01)
    low, high = waf["drop_ci95"]
    assert 0 < low < 5.882 < high
    [alert] = pipe.active()
    assert (alert["model"], alert["kind"], alert["severity"]) == (
        "waf-behavioral", "performance_degraded", "critical")
    assert alert["values"]["baseline_accuracy"] == 0.85
    assert alert["values"]["p_value"] == waf["p_value"]
    assert alert["values"]["current_labeled"] == 20000
    low, high = alert["values"]["drop_ci95"]
    assert alert["message"] == (
        f"WAF Behavioral Performance Degraded (degradation_percent: 5.9%), 95% CI {low:.1f} to "
        f"{high:.1f}%; p = {waf['p_value']:.2g} < 8.7e-05; 20000 labeled in the last 15 min "
        "against 1000 in the baseline")
    assert "WAF Behavioral Performance Degraded (degradation_percent: 5.9%)" in caplog.text
    verdict = verify_degradation(pipe.svc, "waf-behavioral")
    assert verdict["verdict"] == "confirmed degradation"
    assert "Fisher exact p" in verdict["explanation"]
    assert verify_degradation(pipe.svc, "n1-detector")["verdict"] == "false alarm"


def test_detector_state_carries_from_check_to_check(pipe: Pipeline) -> None:
    """Each check feeds the minutes since the previous one to the stored detector: a drop
    spread over four checks, none of them conclusive alone, is caught by the longer windows,
    and the alert clears once accuracy is back."""
    pipe.deploy("n1-detector", ago_s=86400)
    pipe.feed("n1-detector", 5000, 0.85, at=pipe.clock.now - 86000)
    checks = []
    for i in range(12):
        pipe.feed("n1-detector", 1500, 0.82, seed=100 + i)
        pipe.clock.now += 900
        checks.append(status(run_degradation(pipe.svc), "n1-detector"))
        if checks[-1]["status"] == "degraded":
            break
    assert checks[0]["current"]["labeled"] == 1500 and checks[0]["status"] == "ok"
    assert checks[-1]["status"] == "degraded" and checks[-1]["window_checks"] > 1
    for i in range(8):
        pipe.feed("n1-detector", 3000, 0.86, seed=200 + i)
        pipe.clock.now += 900
        last = status(run_degradation(pipe.svc), "n1-detector")
    assert last["status"] == "ok"
    assert pipe.active() == []


def test_checks_more_often_than_a_minute_still_read_whole_minutes(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With checks every 10 s (the demo's schedule), the first check reads the minute that
    just ended, not a window starting 10 s before it (keys of no bucket)."""
    monkeypatch.setenv("MLOPS_DEGRADATION_INTERVAL_S", "10")
    pipe = Pipeline(redis_url)
    pipe.deploy("n1-detector", ago_s=7200)
    pipe.feed("n1-detector", 1000, 0.85, at=pipe.clock.now - 7000)
    pipe.clock.now = (pipe.clock.now // 60) * 60 + 5  # 5 s into a minute
    pipe.feed("n1-detector", 2000, 0.85, at=pipe.clock.now - 30)  # in the minute before
    result = status(run_degradation(pipe.svc), "n1-detector")
    assert result["current"]["labeled"] == 2000 and result["status"] == "ok"


def test_a_baseline_is_collected_before_anything_is_compared(pipe: Pipeline) -> None:
    pipe.deploy("queue-anomaly", ago_s=600)
    pipe.feed("queue-anomaly", 300, 0.8, at=pipe.clock.now - 500)
    result = status(run_degradation(pipe.svc), "queue-anomaly")
    assert result["status"] == "no_baseline"
    assert "300 labeled predictions, 1000 needed" in result["reason"]


def test_set_baseline_from_a_window(pipe: Pipeline) -> None:
    pipe.deploy("queue-anomaly")
    pipe.feed("queue-anomaly", 1500, 0.9)
    doc = set_baseline(pipe.svc, "queue-anomaly", "last_1000", actor="dana")
    assert doc["labeled"] == 1000 and doc["set_by"] == "dana"
    assert doc["accuracy"] == pytest.approx(
        pipe.svc.windows.count_window("queue-anomaly", "1.0.0", 1000)["accuracy"])
    result = status(run_degradation(pipe.svc, "queue-anomaly"), "queue-anomaly")
    assert result["status"] == "insufficient_data"  # nothing since the baseline was set
    pipe.clock.now += 60
    pipe.feed("queue-anomaly", 500, 0.9)
    pipe.clock.now += 60
    result = status(run_degradation(pipe.svc, "queue-anomaly"), "queue-anomaly")
    assert result["baseline"]["source"] == "manual" and result["status"] == "ok"
    assert result["baseline"]["labeled"] == 1000 and result["current"]["labeled"] == 500


def test_a_shift_in_scores_is_reported_as_drift(pipe: Pipeline) -> None:
    rng = np.random.default_rng(4)
    pipe.deploy("queue-anomaly", ago_s=7200)
    pipe.feed("queue-anomaly", 2000, 0.85, at=pipe.clock.now - 7000,
              scores=rng.beta(2, 5, 2000))
    pipe.feed("queue-anomaly", 2000, 0.85, scores=rng.beta(5, 2, 2000))
    pipe.clock.now += 60
    result = status(run_degradation(pipe.svc), "queue-anomaly")
    assert result["status"] == "ok" and result["drift"]["drifted"] is True
    assert result["drift"]["ks_statistic"] > 0.3
    assert result["drift"]["p_value"] < result["drift"]["alpha"]
    [alert] = pipe.active()
    assert (alert["kind"], alert["severity"]) == ("data_drift", "warning")
    assert alert["message"] == "Queue Anomaly Score Distribution Shifted (ks_distance: 0.772)"


def test_a_silence_mutes_matching_alerts_until_it_is_removed(pipe: Pipeline, cli) -> None:
    pipe.deploy("n1-detector")
    pipe.feed("n1-detector", 1000, 0.7)
    silence = cli.json("silence", "n1-detector", "--kind", "accuracy_below_threshold",
                       "--for", "2h", "--reason", "retraining", "--actor", "ops")
    pipe.clock.now = time.time()
    result = status(run_monitoring(pipe.svc), "n1-detector")
    assert result["alert"] == {"id": result["alert"]["id"], "notified": False,
                               "reason": "silenced"}
    assert pipe.dispatched == []
    listed = cli.json("silences")["silences"]
    assert [(s["id"], s["reason"], s["created_by"]) for s in listed] == [
        (silence["id"], "retraining", "ops")]
    assert cli.json("alerts", "--active")["alerts"][0]["kind"] == "accuracy_below_threshold"
    cli("unsilence", silence["id"])
    assert cli.json("silences")["silences"] == []
    pipe.clock.now += 60
    assert status(run_monitoring(pipe.svc), "n1-detector")["alert"]["notified"] is True


def test_silences_expire(pipe: Pipeline) -> None:
    store = pipe.svc.alerts.store
    store.add_silence("n1-detector", None, 60, None, "ops")
    assert store.silenced("n1-detector", "data_drift")
    pipe.clock.now += 61
    assert not store.silenced("n1-detector", "data_drift")
    assert store.silences() == [] and len(store.silences(include_expired=True)) == 1


class Receiver:
    """A small real HTTP server that records webhook deliveries."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay_s)
                outer.requests.append({"headers": dict(self.headers), "body": body})
                failing = len(outer.requests) <= outer.fail_first
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver(monkeypatch) -> Any:
    made: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        r = Receiver(**kw)
        made.append(r)
        monkeypatch.setenv("MLOPS_WEBHOOK_URLS", r.url)
        monkeypatch.setenv("MLOPS_WEBHOOK_ALLOW_HTTP", "true")  # a local http receiver
        monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv("MLOPS_WEBHOOK_BACKOFF_S", "0.2")
        return r
    yield make
    for r in made:
        r.close()


def test_a_webhook_receiver_gets_a_signed_alertmanager_payload(worker, redis_url,
                                                               receiver) -> None:
    from mlops_tasks.workers.runtime import send_webhook

    hook = receiver()
    pipe = Pipeline(redis_url, dispatch=send_webhook)
    pipe.deploy("waf-behavioral")
    pipe.feed("waf-behavioral", 1000, 0.8)
    run_monitoring(pipe.svc)
    wait_for(lambda: hook.requests, what="a delivery")
    req = hook.requests[0]
    signed, stamp = req["headers"][SIGNATURE_HEADER], req["headers"][TIMESTAMP_HEADER]
    assert verify(req["body"], "s3cret", signed, stamp)
    assert not verify(req["body"], "wrong", signed, stamp)
    assert abs(int(stamp) - time.time()) < 60
    doc = json.loads(req["body"])
    assert doc["version"] == "4" and doc["status"] == "firing"
    [a] = doc["alerts"]
    assert a["labels"] == {"alertname": "accuracy_below_threshold", "model": "waf-behavioral",
                           "version": "1.0.0", "severity": "critical"}
    assert a["annotations"]["summary"] == \
        "WAF Behavioral Performance Warning (critical): Accuracy dropped to 80.00%"
    log = wait_for(lambda: [n for n in pipe.svc.alerts.store.notifications()
                            if n["channel"] == "webhook"], what="notification log")
    assert log[0]["result"] == "sent" and log[0]["http_status"] == 200
    assert log[0]["receiver"].startswith("http://127.0.0.1:")
    assert "secret-token" not in json.dumps(log)


def test_a_failing_receiver_is_retried_without_delaying_monitoring(worker, redis_url,
                                                                   receiver) -> None:
    from mlops_tasks.workers.runtime import send_webhook

    hook = receiver(fail_first=2, delay_s=1.0)
    pipe = Pipeline(redis_url, dispatch=send_webhook)
    pipe.deploy("n1-detector")
    pipe.feed("n1-detector", 1000, 0.7)
    started = time.monotonic()
    run_monitoring(pipe.svc)
    assert time.monotonic() - started < 1.0  # the slow receiver is the worker's business
    wait_for(lambda: len(hook.requests) == 3, timeout=30, what="two retries")
    results = wait_for(lambda: (r := [n["result"] for n in pipe.svc.alerts.store.notifications()
                                      if n["channel"] == "webhook"]) and len(r) == 3 and r,
                       what="three attempts logged")
    assert results == ["sent", "retrying", "retrying"]  # newest first


def test_run_monitoring_through_the_queue(worker, pipe: Pipeline, cli) -> None:
    pipe.deploy("n1-detector")
    pipe.feed("n1-detector", 300, 0.95)
    doc = cli.json("run", "monitoring", "--wait", "--timeout", "30")
    assert doc["job"] == "monitoring"
    assert status(doc, "n1-detector")["status"] == "monitored"
    doc = cli.json("run", "degradation", "--model", "n1-detector", "--wait")
    assert status(doc, "n1-detector")["status"] == "no_baseline"


def test_run_times_out_cleanly_when_no_worker_listens(tmp_path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mlops_tasks.cli.main", "run", "monitoring", "--wait",
             "--timeout", "1.5"], env=project_env(server.url, MLOPS_DATA_DIR=str(tmp_path)),
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.strip().splitlines() == [
            ("error: no worker answered on queue mlops.monitoring within 1.5s "
             "(start one with `mlops worker`)")]
    finally:
        server.stop()


def test_alert_reports_and_trends(pipe: Pipeline, cli) -> None:
    pipe.alerting_waf()
    alerts = cli.json("alerts", "--model", "waf-behavioral")["alerts"]
    assert {a["kind"] for a in alerts} == {"accuracy_below_threshold", "performance_degraded"}
    for a in alerts:
        assert {"id", "model", "version", "kind", "severity", "message", "values", "fired_at",
                "resolved_at"} <= set(a)
    report = cli.json("degradation-report", "--last-week")
    assert [i["kind"] for i in report["incidents"]] == ["performance_degraded"]
    summary = cli.json("daily-summary")
    waf = next(m for m in summary["models"] if m["name"] == "waf-behavioral")
    assert waf["last_24h"]["count"] == 6000 and len(waf["alerts"]) == 2
    assert waf["monitoring_status"] == "alerting"
    trends = cli.json("performance-trends", "waf-behavioral", "--last-month")
    assert len(trends["series"]["day"]) == 30
    assert trends["series"]["labeled"][-1] == 6000
    assert "accuracy" in cli("performance-trends", "waf-behavioral").stdout
    assert cli.json("notifications")["notifications"]
    human = cli("alerts").stdout
    assert "performance_degraded" in human


def test_compare_versions_gives_the_significance_of_the_difference(pipe: Pipeline, cli) -> None:
    from mlops_tasks.registry import ModelConfig

    reg = pipe.svc.registry
    reg.register("n1-detector", "1.1.0", ModelConfig.from_dict(
        reg.current("n1-detector")["config"]), actor="t")
    pipe.deploy("n1-detector")  # unversioned events go to production's 1.0.0
    pipe.feed("n1-detector", 2000, 0.80)
    pipe.ingestor.models.clear()
    for lo in range(0, 2000, 1000):
        pipe.ingestor.ingest_predictions({
            "v": 1, "kind": "predictions", "batch_id": f"v2-{lo}", "model": "n1-detector",
            "n": 1000, "score": [0.5] * 1000, "predicted": [1] * 1000,
            "actual": [1] * 900 + [0] * 100, "version": "1.1.0"})
    doc = cli.json("compare-versions", "n1-detector", "1.0.0", "1.1.0")
    assert doc["versions"]["1.0.0"]["accuracy"] == pytest.approx(0.80)
    assert doc["versions"]["1.1.0"]["accuracy"] == pytest.approx(0.90)
    assert doc["accuracy_difference"]["p_value"] < 1e-6
    assert doc["accuracy_difference"]["better"] == "1.1.0"


def test_check_and_verify_degradation_from_the_cli(pipe: Pipeline, cli) -> None:
    pipe.deploy("n1-detector", ago_s=7200)
    pipe.feed("n1-detector", 1000, 0.85, at=pipe.clock.now - 7000)
    pipe.feed("n1-detector", 100, 0.80, at=pipe.clock.now - 120)
    doc = cli.json("check-degradation", "n1-detector")
    assert status(doc, "n1-detector")["status"] == "ok"
    verdict = cli.json("verify-degradation", "n1-detector")
    assert verdict["verdict"] == "false alarm"
    assert "not a real degradation" in cli("verify-degradation", "n1-detector").stdout
    base = cli.json("set-baseline", "n1-detector", "--window", "last_100")
    assert base["labeled"] == 100 and "hist_all" not in base
    bad = cli("set-baseline", "n1-detector", "--window", "forever", expect=1)
    assert "--window: expected a duration" in bad.stderr


def test_drift_is_reported_before_any_label_arrives(pipe: Pipeline) -> None:
    rng = np.random.default_rng(9)
    pipe.deploy("queue-anomaly", ago_s=7200)
    pipe.feed("queue-anomaly", 2000, 0.85, at=pipe.clock.now - 7000,
              scores=rng.beta(2, 5, 2000))
    scores = rng.beta(5, 2, 3000)
    pipe.ingestor.ingest_predictions({  # no labels at all
        "v": 1, "kind": "predictions", "batch_id": "unlabeled", "model": "queue-anomaly",
        "n": 3000, "score": scores.tolist(), "timestamp": pipe.clock.now})
    pipe.clock.now += 60
    result = status(run_degradation(pipe.svc), "queue-anomaly")
    assert result["status"] == "insufficient_data" and result["drift"]["drifted"] is True
    assert [a["kind"] for a in pipe.active()] == ["data_drift"]


def test_alerts_of_a_version_no_longer_in_production_are_resolved(pipe: Pipeline) -> None:
    from mlops_tasks.registry import ModelConfig

    reg = pipe.svc.registry
    pipe.deploy("n1-detector")
    pipe.feed("n1-detector", 1000, 0.7)
    run_monitoring(pipe.svc)
    assert [a["version"] for a in pipe.active()] == ["1.0.0"]
    reg.register("n1-detector", "1.1.0", ModelConfig.from_dict(reg.current("n1-detector")[
        "config"]), actor="t")
    reg.deploy("n1-detector", "1.1.0", "production", actor="t")
    result = status(run_monitoring(pipe.svc), "n1-detector")
    assert result["version"] == "1.1.0" and result["status"] == "insufficient_data"
    assert pipe.active() == []
    resolved = [n for n in pipe.svc.alerts.store.notifications() if n["status"] == "resolved"]
    assert resolved and resolved[0]["version"] == "1.0.0"
