"""The main job: `mlops demo` closes the loop on a real stack, and the loop's pieces on their
own (the simulator's traffic through the real detectors and a real worker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlops_tasks.demo import STEPS
from mlops_tasks.errors import ValidationError
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings
from mlops_tasks.simulator.run import SOURCES, _Stream, parse_drift

from .conftest import wait_for
from .processes import WorkerProcess, project_env
from .redis_server import RedisServer, free_port


def mlops(url: str, tmp_path: Path, *args: str,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", *args],
                          env=project_env(url, MLOPS_LOG_DIR=str(tmp_path / "logs")),
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_the_demo_closes_the_loop_on_a_real_stack(tmp_path: Path) -> None:
    """Given `mlops demo` on its own Redis: the stack starts, the simulator's traffic flows
    through the three detectors, waf-behavioral drifts after its baseline, the degradation
    alert fires, auto-tuning lowers its threshold in the registry, the detector reads it back
    (its decisions change, so accuracy recovers), and everything stops."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        result = mlops(server.url, tmp_path, "demo", "--json", "--serve-port",
                       str(free_port()), "--flower-port", str(free_port()), timeout=420)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        doc = json.loads(result.stdout)  # one document
        assert doc["stack"]["serve"]["metrics"].endswith("/metrics")
        steps = [s["step"] for s in doc["steps"]]
        assert sorted(steps, key=STEPS.index) == list(STEPS) and doc["missing"] == []
        at = {s["step"]: s["at_s"] for s in doc["steps"]}
        assert at["drift injected"] <= at["degradation alert fired"]
        assert at["auto-tuning applied"] <= at["accuracy recovering"]
        client = server.client()
        config = Registry(client, Settings.from_env({})).current("waf-behavioral", "1.0.0")
        assert config["config"]["decision_threshold"] < 0.7  # tuned down from the default
        alerts = mlops(server.url, tmp_path, "alerts", "--model", "waf-behavioral", "--json")
        assert "performance_degraded" in {a["kind"] for a in json.loads(alerts.stdout)["alerts"]}
        audit = mlops(server.url, tmp_path, "audit-log", "waf-behavioral", "--json")
        assert any(e["action"] == "auto-tune" for e in json.loads(audit.stdout)["entries"])
    finally:
        server.stop()


@pytest.mark.slow
def test_simulate_sends_predictions_then_their_labels_through_a_worker(tmp_path: Path) -> None:
    """`mlops simulate` registers and deploys the models, runs the detectors, and every
    prediction it sent is counted by a real worker and joined to its delayed label."""
    server = RedisServer(tmp_path / "redis").start()
    worker = None
    try:
        worker = WorkerProcess(server.url, tmp_path, "--concurrency", "1").start()
        result = mlops(server.url, tmp_path, "simulate", "--rate", "60", "--duration", "4s",
                       "--label-delay", "1s", "--json")
        assert result.returncode == 0, result.stderr[-2000:]
        doc = json.loads(result.stdout)
        client = server.client()
        for model, stats in doc["models"].items():
            assert stats["sent"] > 30 and stats["labels_sent"] == stats["sent"]
            key = f"mlops:{{{model}}}:total:1.0.0"
            wait_for(lambda k=key, s=stats: int(client.hget(k, "labeled") or 0) == s["sent"],
                     timeout=60, what=f"{model}: every label joined")
            assert int(client.hget(key, "n") or 0) == stats["sent"]
        listed = mlops(server.url, tmp_path, "list-production-models", "--json")
        assert len(json.loads(listed.stdout)["models"]) == 3
    finally:
        if worker:
            worker.stop()
        server.stop()


def test_a_drift_is_named_by_kind_or_model_and_kind(tmp_path: Path) -> None:
    assert parse_drift("throttled-attacks") == {"waf-behavioral": "throttled-attacks"}
    assert parse_drift("n1-detector:new-access-pattern") == {
        "n1-detector": "new-access-pattern"}
    with pytest.raises(ValidationError, match="--drift: unknown drift 'sideways'"):
        parse_drift("sideways")
    with pytest.raises(ValidationError, match="--drift: unknown drift"):
        parse_drift("queue-anomaly:throttled-attacks")
    server = RedisServer(tmp_path / "redis").start()
    try:
        bad = mlops(server.url, tmp_path, "simulate", "--drift", "sideways", "--duration", "1s")
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert bad.stderr.strip().splitlines()[-1].startswith("error: --drift: unknown drift")
        worse = mlops(server.url, tmp_path, "simulate", "--models", "spam-filter")
        assert worse.returncode == 1 and "--models" in worse.stderr
    finally:
        server.stop()


def test_each_model_s_stream_is_the_same_for_a_seed_and_drifts_when_told() -> None:
    for model, source in SOURCES.items():
        a, b = _Stream(source, 5), _Stream(source, 5)
        first = [a.next() for _ in range(40)]
        assert first == [b.next() for _ in range(40)], model
        a.drift = b.drift = source.drifts[0]
        assert [a.next() for _ in range(80)] == [b.next() for _ in range(80)], model
    kinds = {x.kind for x in _Stream(SOURCES["waf-behavioral"], 1).module.generate(
        np.random.default_rng(1), 400, drift="throttled-attacks")}
    assert {"throttled-injection", "throttled-scanner"} <= kinds
