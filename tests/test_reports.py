"""Reports as library functions: pure rules checked with tables, and each report read back
from real aggregates in a real Redis, on a fake clock."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlops_tasks import reports
from mlops_tasks.binning import SCORE_BINS, score_bins
from mlops_tasks.registry import ModelConfig
from mlops_tasks.reports.sufficiency import Requirements
from mlops_tasks.tuning.engine import run_tuning

from .pipeline_support import Pipeline
from .test_tuning import feed_calibrated

TUNING = {"parameter": "confidence_threshold", "min": 0.5, "max": 0.9, "step": 0.05,
          "metric": "f1"}
CONFIG = {"accuracy_threshold": 0.85, "tuning": TUNING}


def run(samples: int = 2000, best: float | None = 0.7, best_accuracy: float | None = 0.9,
        improvement: float | None = 8.0, current: float = 0.6) -> dict[str, Any]:
    """A dry-run tuning evaluation, as engine.tune returns it."""
    return {"samples": samples, "best_threshold": best, "best_accuracy": best_accuracy,
            "improvement_percent": improvement, "current_threshold": current}


# --------------------------------------------------------------------------- data sufficiency
def test_data_sufficiency_uses_the_configured_minimums(redis_url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Given MLOPS_TUNING_MIN_SAMPLES=250 and MLOPS_MONITORING_MIN_SAMPLES=150 and 200 labeled
    predictions, then the report requires 250 for tuning and 150 for monitoring, and 200 is
    too few for tuning but enough for monitoring."""
    monkeypatch.setenv("MLOPS_TUNING_MIN_SAMPLES", "250")
    monkeypatch.setenv("MLOPS_MONITORING_MIN_SAMPLES", "150")
    pipe = Pipeline(redis_url)
    pipe.feed("n1-detector", 200, 0.9)
    doc = reports.data_sufficiency(pipe.svc, "n1-detector")
    assert doc.requirements.tuning_min_samples == 250
    assert doc.requirements.monitoring_min_samples == 150
    since = next(w for w in doc.windows if w.window == "since_deployment")
    assert since.labeled == 200
    assert since.enough_for_tuning is False and since.enough_for_monitoring is True
    assert doc.to_dict()["requirements"]["tuning_min_samples"] == 250


def test_data_sufficiency_cli_reads_mlops_tuning_min_samples(redis_url: str, cli) -> None:
    """`MLOPS_TUNING_MIN_SAMPLES=250 mlops data-sufficiency n1-detector --json` says 250 (it
    said 100 whatever the setting)."""
    Pipeline(redis_url).feed("n1-detector", 120, 0.9)
    doc = cli.json("data-sufficiency", "n1-detector", env={"MLOPS_TUNING_MIN_SAMPLES": "250"})
    assert doc["requirements"]["tuning_min_samples"] == 250
    assert [w["enough_for_tuning"] for w in doc["windows"]] == [False] * 4
    assert cli.json("data-sufficiency", "n1-detector")["requirements"][
        "tuning_min_samples"] == 100


@pytest.mark.parametrize(("labeled", "tuning", "monitoring", "drop"), [
    (0, False, False, False),
    (99, False, False, False),
    (100, True, False, False),
    (150, True, True, False),
    (2000, True, True, True),
])
def test_judge_compares_each_window_with_each_need(labeled: int, tuning: bool,
                                                   monitoring: bool, drop: bool) -> None:
    """Pure: a window has enough for a need when it holds at least that many labels."""
    req = Requirements(tuning_min_samples=100, detect_5pct_drop_samples=1500,
                       reference_accuracy=0.9, monitoring_min_samples=150)
    (w,) = reports.judge({"w": labeled}, req)
    assert (w.enough_for_tuning, w.enough_for_monitoring, w.enough_to_detect_5pct_drop) == (
        tuning, monitoring, drop)


def test_an_undetectable_drop_is_neither_enough_nor_too_few() -> None:
    """Pure: with no sample size that detects the drop, the window's verdict is None."""
    req = Requirements(100, None, 1.0, 100)
    (w,) = reports.judge({"w": 10_000}, req)
    assert w.enough_to_detect_5pct_drop is None and w.to_dict()[
        "enough_to_detect_5pct_drop"] is None


# --------------------------------------------------------------------------- error bands
def test_error_bands_split_the_histograms_into_equal_score_bands() -> None:
    """Pure: given known outcomes at known scores, each band counts its own errors and the
    bands add up to the whole."""
    scores = np.array([0.05, 0.15, 0.15, 0.55, 0.95, 0.95])
    rows = {k: np.zeros(SCORE_BINS, dtype=np.int64) for k in ("tn", "fp", "fn", "tp")}
    for s, k in zip(scores, ["tn", "fn", "fn", "fp", "tp", "fp"], strict=True):
        rows[k][score_bins(np.array([s]))[0]] += 1
    bands = reports.error_bands(rows, 10)
    assert len(bands) == 10 and bands[0].low == 0.0 and bands[-1].high == 1.0
    assert [b.labeled for b in bands] == [1, 2, 0, 0, 0, 1, 0, 0, 0, 2]
    assert bands[1].false_negatives == 2 and bands[1].error_rate == 1.0
    assert bands[9].false_positives == 1 and bands[9].error_rate == 0.5
    assert bands[2].error_rate is None
    assert bands[0].to_dict() == {"band": [0.0, pytest.approx(0.1, abs=1e-3)], "labeled": 1,
                                  "false_positives": 0, "false_negatives": 0,
                                  "error_rate": 0.0}


def test_analyze_errors_reads_the_window_of_a_model(pipe: Pipeline) -> None:
    """Given 1000 labeled outcomes at 80 % accuracy, then the bands hold all of them and the
    total has exactly 200 errors."""
    pipe.feed("waf-behavioral", 1000, 0.8)
    doc = reports.analyze_errors(pipe.svc, "waf-behavioral", None, 3600, 5)
    assert doc.version == "1.0.0" and len(doc.bands) == 5
    assert sum(b.labeled for b in doc.bands) == 1000 == doc.total["count"]
    assert doc.total["fp"] + doc.total["fn"] == 200
    assert sum(b.false_positives for b in doc.bands) == doc.total["fp"]


# --------------------------------------------------------------------------- version comparison
@pytest.mark.parametrize(("a", "b", "better", "significant"), [
    ((800, 1000), (900, 1000), "v2", True),
    ((900, 1000), (800, 1000), "v1", True),
    ((850, 1000), (851, 1000), "v2", False),
    ((9, 10), (8, 10), "v1", False),  # small samples: Fisher's exact test
])
def test_accuracy_difference_is_two_sided(a: tuple[int, int], b: tuple[int, int], better: str,
                                          significant: bool) -> None:
    """Pure: the better version and whether the difference is significant, either way."""
    diff = reports.accuracy_difference("v1", *a, "v2", *b)
    assert diff.better == better
    assert diff.p_value is not None and (diff.p_value < 0.01) is significant
    swapped = reports.accuracy_difference("v1", *b, "v2", *a)
    assert swapped.p_value == pytest.approx(diff.p_value)
    assert diff.test == ("fisher-exact" if a[1] < 100 else "z-test")


def test_without_labeled_data_there_is_no_test() -> None:
    """Pure: a version without labeled outcomes gives no test and no p-value."""
    diff = reports.accuracy_difference("v1", 0, 0, "v2", 90, 100)
    assert diff.to_dict() == {"test": None, "p_value": None}


def test_compare_versions_reads_each_version_since_its_first_event(pipe: Pipeline) -> None:
    """Given 1.0.0 at 80 % and 1.1.0 at 90 % on 1000 outcomes each, then 1.1.0 is better
    with a tiny p-value."""
    reg = pipe.svc.registry
    reg.register("n1-detector", "1.1.0", ModelConfig.from_dict(
        reg.current("n1-detector")["config"]), actor="t")
    pipe.deploy("n1-detector")  # unversioned events go to production's 1.0.0
    pipe.feed("n1-detector", 1000, 0.80)
    pipe.ingestor.models.clear()
    pipe.ingestor.ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": "v11", "model": "n1-detector",
        "n": 1000, "score": [0.5] * 1000, "predicted": [1] * 1000,
        "actual": [1] * 900 + [0] * 100, "version": "1.1.0"})
    result = reports.compare_versions(pipe.svc, "n1-detector", "1.0.0", "1.1.0")
    doc = result.to_dict()
    assert list(doc) == ["name", "versions", "accuracy_difference"]
    assert doc["versions"]["1.1.0"]["accuracy"] == pytest.approx(0.90)
    assert doc["accuracy_difference"]["better"] == "1.1.0"
    assert doc["accuracy_difference"]["p_value"] < 1e-6


# --------------------------------------------------------------------------- recommendations
@pytest.mark.parametrize(("evaluation", "action"), [
    (run(samples=50), "collect more labels"),
    (run(best_accuracy=0.80), "retrain"),
    (run(best=0.5), "widen the range"),
    (run(best=0.9), "widen the range"),
    (run(improvement=8.0), "tune"),
    (run(improvement=2.0), "none"),
    (run(improvement=None, best=None, best_accuracy=None), "none"),
])
def test_recommend(evaluation: dict[str, Any], action: str) -> None:
    """Pure: labels first, then retraining, then the range, then tuning."""
    assert reports.recommend(evaluation, CONFIG, min_samples=100,
                             min_improvement=5.0).action == action


def test_recommendations_explain_themselves() -> None:
    """Pure: each recommendation says why, with the numbers behind it."""
    few = reports.recommend(run(samples=50), CONFIG, 100, 5.0)
    assert few.reason == "50 labeled predictions in the tuning window, 100 needed"
    edge = reports.recommend(run(best=0.5), CONFIG, 100, 5.0)
    assert edge.reason == "the best threshold 0.5 sits on the edge of 0.5-0.9; extend it down"
    tune = reports.recommend(run(), CONFIG, 100, 5.0)
    assert tune.reason == "f1 would improve +8.0% at 0.7 (now 0.6)"


def test_improvement_recommendations_for_every_production_model(pipe: Pipeline) -> None:
    """Given one production model with too few labels and one whose best threshold sits on
    the edge of its grid, then the first needs labels and the second a wider range."""
    pipe.deploy("n1-detector")
    pipe.deploy("queue-anomaly")
    feed_calibrated(pipe, "n1-detector", 3000, best=0.9)
    feed_calibrated(pipe, "queue-anomaly", 50, best=0.5)
    recs = {m.name: m for m in reports.improvement_recommendations(pipe.svc).models}
    assert set(recs) == {"n1-detector", "queue-anomaly"}
    assert recs["queue-anomaly"].recommendation.action == "collect more labels"
    assert recs["n1-detector"].recommendation.action == "widen the range"
    assert recs["n1-detector"].to_dict()["best_threshold"] == 0.9


# --------------------------------------------------------------------------- tuning report
def test_summarize_counts_applications_and_stagnation() -> None:
    """Pure: the average improvement is over applied runs; a model stagnates when every
    measured run improved less than 1 %."""
    runs = [{"model": "m", "applied": True, "improvement_percent": 12.0, "samples": 900,
             "reason": "applied"},
            {"model": "m", "applied": False, "improvement_percent": 0.5, "samples": 900,
             "reason": "improvement_below_minimum"},
            {"model": "m", "applied": False, "improvement_percent": None, "samples": 0,
             "reason": "insufficient_data"},
            {"model": "other", "applied": True, "improvement_percent": 0.2, "samples": 9,
             "reason": "applied"}]
    m = reports.summarize("m", runs)
    assert (m.runs, m.applied, m.average_improvement_percent) == (3, 1, 12.0)
    assert m.stagnant_runs == 1 and m.stagnating is False
    assert list(m.reasons) == ["applied", "improvement_below_minimum", "insufficient_data"]
    assert reports.summarize("other", runs).stagnating is True
    assert reports.summarize("none", runs).to_dict() == {
        "name": "none", "runs": 0, "applied": 0, "average_improvement_percent": None,
        "stagnant_runs": 0, "stagnating": False, "reasons": {}}


def test_tuning_report_over_a_period(pipe: Pipeline) -> None:
    """Given one applied tuning run, then the week's report counts it for its model."""
    pipe.deploy("n1-detector")
    feed_calibrated(pipe, "n1-detector", 4000, best=0.75)
    run_tuning(pipe.svc)
    report = reports.tuning_report(pipe.svc, 7 * 86400)
    n1 = next(m for m in report.models if m.name == "n1-detector")
    assert (report.runs, report.applied, n1.runs, n1.applied) == (1, 1, 1, 1)
    assert n1.average_improvement_percent is not None and n1.average_improvement_percent > 5
    assert list(report.to_dict()) == ["period_s", "runs", "applied", "models"]


# --------------------------------------------------------------------------- alerts and summaries
def test_alert_listing_degradation_report_and_daily_summary(pipe: Pipeline) -> None:
    """Given a model that fell below its threshold and degraded, then the alert listing shows
    both alerts, the degradation report only the degradation, and the daily summary the
    day's 6000 outcomes, two alerts and the alerting status."""
    pipe.alerting_waf()
    listed = reports.alert_listing(pipe.svc, "waf-behavioral")
    assert {a.kind for a in listed} == {"accuracy_below_threshold", "performance_degraded"}
    assert list(listed[0].to_dict()) == [
        "id", "model", "version", "kind", "severity", "status", "message", "values",
        "fired_at", "resolved_at", "notifications", "fingerprint"]
    report = reports.degradation_report(pipe.svc, 7 * 86400)
    assert [a.kind for a in report.incidents] == ["performance_degraded"]
    assert report.to_dict()["by_model"] == {"waf-behavioral": 1}
    summary = reports.daily_summary(pipe.svc)
    waf = next(m for m in summary.models if m.name == "waf-behavioral")
    assert waf.last_24h["count"] == 6000 and len(waf.alerts) == 2
    assert waf.monitoring_status == "alerting"
    assert summary.to_dict()["generated_at"].endswith("Z")


def test_performance_trends_has_one_point_per_day(pipe: Pipeline) -> None:
    """Given today's outcomes, then a 30-day trend has 30 points, oldest first, the last
    holding today's count, and the JSON holds one series per metric."""
    pipe.feed("waf-behavioral", 1200, 0.75)
    trends = reports.performance_trends(pipe.svc, "waf-behavioral", 30)
    assert len(trends.points) == 30 and trends.points[-1].labeled == 1200
    assert trends.points[-1].accuracy == pytest.approx(0.75)
    assert trends.points[0].accuracy is None
    series = trends.to_dict()["series"]
    assert list(series) == ["day", "predictions", "labeled", "accuracy", "precision", "recall",
                            "f1", "false_positive_rate"]
    assert series["day"] == sorted(series["day"])


def test_model_summary_and_details(pipe: Pipeline) -> None:
    """Given 400 labeled outcomes of a model, then its summary and its details show them in
    every window, and its label report has full coverage."""
    pipe.feed("queue-anomaly", 400, 0.85)
    (summary,) = reports.performance_summary(pipe.svc, ["queue-anomaly"])
    assert summary.windows["since_deployment"]["count"] == 400
    assert summary.to_dict()["dead_letters"] == 0
    details = reports.performance_details(pipe.svc, "queue-anomaly", None, 50, 3)
    assert details.windows["last_50"]["count"] == 50 and len(details.daily) == 3
    assert details.daily[-1]["count"] == 400
    truth = reports.validate_ground_truth(pipe.svc, "queue-anomaly")
    assert truth.coverage["since_deployment"].coverage == 1.0
    assert truth.to_dict()["coverage"]["last_hour"] == {"predictions": 400, "labeled": 400,
                                                        "coverage": 1.0}
