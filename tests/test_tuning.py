"""Auto-tuning: the grid search against scikit-learn, and the engine end to end."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, fbeta_score, precision_score, recall_score

from mlops_tasks.binning import SCORE_BINS, score_bins
from mlops_tasks.tuning import grid as g
from mlops_tasks.tuning.engine import run_tuning

from .pipeline_support import Pipeline

GRID = np.round(np.arange(0.40, 0.9001, 0.05), 2)


def hists(scores: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.bincount(score_bins(scores[~actual]), minlength=SCORE_BINS),
            np.bincount(score_bins(scores[actual]), minlength=SCORE_BINS))


@pytest.mark.parametrize("seed", range(5))
def test_grid_metrics_equal_scikit_learn_including_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    scores = np.round(rng.random(n), 2)  # many ties, and scores exactly on the thresholds
    actual = rng.random(n) < scores
    neg, pos = hists(scores, actual)
    for conf in (g.from_histograms(neg, pos, GRID), g.from_scores(scores, actual, GRID)):
        m = g.metrics(conf)
        for i, t in enumerate(GRID):
            pred = scores >= t
            assert m["precision"][i] == pytest.approx(precision_score(actual, pred))
            assert m["recall"][i] == pytest.approx(recall_score(actual, pred))
            assert m["f1"][i] == pytest.approx(f1_score(actual, pred))
            assert m["accuracy"][i] == pytest.approx(accuracy_score(actual, pred))
        f2 = g.score(conf, "f_beta", beta=2.0)
        assert f2 == pytest.approx([fbeta_score(actual, scores >= t, beta=2.0) for t in GRID])


def test_empty_classes_give_undefined_metrics_like_scikit_learn() -> None:
    scores = np.array([0.1, 0.2, 0.3])
    actual = np.zeros(3, dtype=bool)  # no positives at all
    conf = g.from_scores(scores, actual, GRID)
    m = g.metrics(conf)
    for i, t in enumerate(GRID):
        pred = scores >= t
        expected = precision_score(actual, pred, zero_division=np.nan)
        assert np.isnan(m["precision"][i]) and np.isnan(expected)
        assert np.isnan(m["recall"][i])
        assert m["accuracy"][i] == 1.0
    assert g.choose(GRID, g.metrics(conf)["f1"], 0.6) is None


def test_cost_score_and_tie_breaking() -> None:
    conf = g.Confusion(np.array([0.5, 0.6]), np.array([5, 4]), np.array([2, 1]),
                       np.array([8, 9]), np.array([1, 2]))
    cost = g.score(conf, "cost", cost_fp=1.0, cost_fn=5.0)
    assert cost == pytest.approx([-(2 + 5) / 16, -(1 + 10) / 16])
    thresholds = np.array([0.5, 0.55, 0.6, 0.65, 0.7])
    tied = np.array([0.8, 0.9, 0.7, 0.9, 0.9])
    assert thresholds[g.choose(thresholds, tied, current=0.62)] == 0.65  # closest
    assert thresholds[g.choose(thresholds, np.array([0.9, 0.1, 0.1, 0.1, 0.9]), 0.6)] == 0.5
    assert g.improvement_percent(0.77, 0.70) == pytest.approx(10.0)


def test_bootstrap_interval_excludes_zero_only_for_a_real_improvement() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(20000)
    actual = rng.random(20000) < scores
    neg, pos = hists(scores, actual)
    low, high = g.bootstrap_improvement(neg, pos, 0.80, 0.50, "f1")
    assert 0 < low < high
    small_neg, small_pos = hists(scores[:60], actual[:60])
    low, _ = g.bootstrap_improvement(small_neg, small_pos, 0.60, 0.55, "f1")
    assert low <= 0


def feed_calibrated(pipe: Pipeline, model: str, n: int, best: float, seed: int = 0) -> None:
    """Scores whose label is positive exactly when the score is at least ``best``, with some
    noise: the best threshold of the grid is ``best``."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(n), 3)
    actual = (scores >= best) ^ (rng.random(n) < 0.05)
    for lo in range(0, n, 5000):
        pipe.batches += 1
        pipe.ingestor.ingest_predictions({
            "v": 1, "kind": "predictions", "batch_id": f"cal-{pipe.batches}", "model": model,
            "n": min(5000, n - lo), "score": scores[lo:lo + 5000].tolist(),
            "actual": actual[lo:lo + 5000].astype(int).tolist(), "timestamp": pipe.clock.now})


def the_run(result: dict, model: str) -> dict:
    return next(r for r in result["runs"] if r["model"] == model)


def test_a_known_best_threshold_is_applied_and_rollback_restores_the_old(
        pipe: Pipeline, caplog: pytest.LogCaptureFixture, cli) -> None:
    pipe.deploy("n1-detector")
    feed_calibrated(pipe, "n1-detector", 4000, best=0.75)
    with caplog.at_level(logging.INFO):
        run = the_run(run_tuning(pipe.svc), "n1-detector")
    assert run["applied"] is True and run["reason"] == "applied"
    assert (run["current_threshold"], run["best_threshold"]) == (0.6, 0.75)
    assert run["improvement_percent"] > 5 and run["improvement_ci95"][0] > 0
    assert len(run["grid"]) == 9 and run["grid"][0]["threshold"] == 0.5
    assert {"threshold", "precision", "recall", "f1", "accuracy", "score"} == set(run["grid"][0])
    assert "n1-detector auto-tuned: confidence_threshold 0.60 -> 0.75 (f1 +" in caplog.text
    current = pipe.svc.registry.current("n1-detector")
    assert current["config"]["decision_threshold"] == 0.75 and current["actor"] == "auto-tuner"
    assert pipe.svc.registry.audit_log("n1-detector")[0]["action"] == "auto-tune"
    history = cli.json("auto-tuning-history", "n1-detector")["runs"]
    assert history[0]["applied"] is True and history[0]["ran_at"]
    # A second run within the cool-down does not retune.
    pipe.svc.registry.set_config("n1-detector", actor="t", changes=[("decision_threshold", 0.6)])
    assert the_run(run_tuning(pipe.svc), "n1-detector")["reason"] == "cooldown"
    cli("rollback-config", "n1-detector", "--to-revision", "2")
    cli("rollback-config", "n1-detector", "--to-revision", "1")
    assert pipe.svc.registry.current("n1-detector")["config"]["decision_threshold"] == 0.6


def test_a_three_percent_improvement_is_not_applied(pipe: Pipeline) -> None:
    pipe.deploy("waf-behavioral")
    rng = np.random.default_rng(3)
    n = 20000
    scores = np.round(rng.random(n), 3)
    actual = rng.random(n) < np.clip((scores - 0.2) * 1.4, 0, 1)
    for lo in range(0, n, 10_000):  # the largest message a worker takes
        pipe.ingestor.ingest_predictions({
            "v": 1, "kind": "predictions", "batch_id": f"three-{lo}", "model": "waf-behavioral",
            "n": 10_000, "score": scores[lo:lo + 10_000].tolist(),
            "actual": actual[lo:lo + 10_000].astype(int).tolist()})
    run = the_run(run_tuning(pipe.svc, dry_run=True), "waf-behavioral")
    best, cur = run["best_score"], run["current_score"]
    # choose the current threshold so the best is about 3% better
    candidates = [r for r in run["grid"] if r["score"] and 1.01 < best / r["score"] < 1.045]
    assert candidates, run["grid"]
    pipe.svc.registry.set_config("waf-behavioral", actor="t",
                                 changes=[("decision_threshold", candidates[0]["threshold"])])
    run = the_run(run_tuning(pipe.svc, "waf-behavioral"), "waf-behavioral")
    assert 1 < run["improvement_percent"] < 5
    assert run["applied"] is False and run["reason"] == "improvement_below_minimum"
    assert cur is not None


def test_too_few_samples_are_skipped(pipe: Pipeline) -> None:
    pipe.deploy("queue-anomaly")
    feed_calibrated(pipe, "queue-anomaly", 60, best=0.7)
    run = the_run(run_tuning(pipe.svc), "queue-anomaly")
    assert run["samples"] == 60 and run["applied"] is False
    assert run["reason"] == "insufficient_data"


def test_with_auto_tuning_disabled_runs_are_only_recorded(redis_url, monkeypatch, cli) -> None:
    monkeypatch.setenv("AUTO_TUNING_ENABLED", "false")
    pipe = Pipeline(redis_url)
    pipe.deploy("n1-detector")
    feed_calibrated(pipe, "n1-detector", 4000, best=0.8)
    run = the_run(run_tuning(pipe.svc), "n1-detector")
    assert run["applied"] is False and run["reason"] == "auto_tuning_disabled"
    assert run["best_threshold"] == 0.8
    assert pipe.svc.registry.current("n1-detector")["config"]["decision_threshold"] == 0.6
    assert cli.json("auto-tuning-history")["runs"][0]["reason"] == "auto_tuning_disabled"


def test_under_required_approval_the_tuner_records_instead_of_applying(
        redis_url, monkeypatch, cli) -> None:
    """Given MLOPS_REQUIRE_APPROVAL and a production model whose best threshold is clearly
    better, when tuning runs, then the run is recorded as approval_required with the
    recommendation, and the configuration clients read is unchanged."""
    monkeypatch.setenv("MLOPS_REQUIRE_APPROVAL", "true")
    pipe = Pipeline(redis_url)
    pipe.svc.registry.deploy("n1-detector", "1.0.0", "production", actor="alice",
                             approved_by="bob")
    feed_calibrated(pipe, "n1-detector", 4000, best=0.8)
    run = the_run(run_tuning(pipe.svc), "n1-detector")
    assert run["applied"] is False and run["reason"] == "approval_required"
    assert run["best_threshold"] == 0.8
    assert pipe.svc.registry.current("n1-detector")["config"]["decision_threshold"] == 0.6
    assert cli.json("auto-tuning-history")["runs"][0]["reason"] == "approval_required"


def test_run_tuning_through_the_queue_and_the_reports(worker, redis_url, cli) -> None:
    pipe = Pipeline(redis_url)
    pipe.deploy("n1-detector")
    pipe.deploy("queue-anomaly")
    feed_calibrated(pipe, "n1-detector", 3000, best=0.9)
    feed_calibrated(pipe, "queue-anomaly", 50, best=0.5)
    dry = cli.json("run", "tuning", "--dry-run", "--wait", "--timeout", "30")
    n1 = the_run(dry, "n1-detector")
    assert n1["reason"] == "dry_run" and n1["applied"] is False
    for key in ("model", "version", "metric", "current_threshold", "current_score",
                "best_threshold", "best_score", "improvement_percent", "samples", "applied",
                "reason", "grid"):
        assert key in n1
    done = cli.json("run", "tuning", "--model", "n1-detector", "--wait", "--timeout", "30")
    assert the_run(done, "n1-detector")["applied"] is True
    report = cli.json("auto-tuning-report", "--last-week")
    n1_report = next(m for m in report["models"] if m["name"] == "n1-detector")
    assert n1_report["runs"] == 1 and n1_report["applied"] == 1
    assert n1_report["average_improvement_percent"] > 5
    recs = {m["name"]: m for m in cli.json("improvement-recommendations")["models"]}
    assert recs["queue-anomaly"]["recommendation"] == "collect more labels"
    assert recs["n1-detector"]["recommendation"] == "widen the range"  # best 0.9 = grid edge
    assert "auto-tuning" not in cli("auto-tuning-report").stderr
