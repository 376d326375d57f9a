"""The main job: `mlops demo` runs the whole pipeline with a worker of its own."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_demo_streams_traffic_and_shows_every_model(cli) -> None:
    doc = cli.json("demo", "--events", "2000")
    assert [m["name"] for m in doc["models"]] == ["n1-detector", "waf-behavioral",
                                                  "queue-anomaly"]
    for m in doc["models"]:
        since = m["windows"]["since_deployment"]
        assert since["count"] == 2000 and since["predictions"] == 2000
        assert 0.7 < since["accuracy"] <= 1.0
        assert m["pending_labels"] == 0 and m["dead_letters"] == 0
    assert {r["status"] for r in doc["monitoring"]["models"]} <= {"monitored", "alerting"}
    for run in doc["tuning"]["runs"]:
        assert run["applied"] is False and not run["reason"].startswith("failed")
        assert run["samples"] == 2000 and len(run["grid"]) == 9
    assert len(cli.json("list-production-models")["models"]) == 3
