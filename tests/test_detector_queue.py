"""queue-anomaly: the algorithm on hand-made job runs, the generator, the quality against the
naive baseline, and the online path through a real client and registry."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import redis

import mlops_tasks.detectors.queue as queue_module
from mlops_tasks import keys
from mlops_tasks.client import MonitoringClient
from mlops_tasks.detectors.queue import (
    WARMUP_RUNS,
    QueueAnomalyDetector,
    confidence,
    poisson_z,
    rate_upper,
    rising,
    score_from_confidence,
)
from mlops_tasks.errors import ValidationError
from mlops_tasks.ingest import events, journal
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings
from mlops_tasks.simulator.queue import (
    ANOMALIES,
    DRIFTS,
    LOOKALIKES,
    NaiveZScore,
    drift_start,
    generate,
    naive_scores,
)

from .conftest import wait_for
from .test_registry import register_catalogue

MODEL = "queue-anomaly"
SIGMA = 0.3  # log-spread of the hand-made classes' durations


def offline(**env: str) -> QueueAnomalyDetector:
    return QueueAnomalyDetector(settings=Settings.from_env(env))


def job(duration_ms: float, *, job_class: str = "emails.send", memory_mb: float = 80.0,
        failed: bool = False, attempts: int = 1, items: int | None = None,
        release: str | None = "r1") -> dict[str, Any]:
    return {"ts": 1.7e9, "job_class": job_class, "queue": "default", "duration_ms": duration_ms,
            "memory_mb": memory_mb, "failed": failed, "attempts": attempts, "items": items,
            "release": release}


def warm(detector: QueueAnomalyDetector, rng: np.random.Generator, runs: int = 200, *,
         median_ms: float = 200.0, job_class: str = "emails.send", **fields: Any) -> None:
    """``runs`` ordinary runs of a class: log-normal durations (SIGMA) and memory (0.1)."""
    for _ in range(runs):
        detector.score_job(job(median_ms * math.exp(SIGMA * rng.standard_normal()),
                               memory_mb=80.0 * math.exp(0.1 * rng.standard_normal()),
                               job_class=job_class, **fields))


# ----------------------------------------------------------------------------- the numeric core

@pytest.mark.parametrize(("evidence", "expected"), [
    (0.0, 0.0), (-2.0, 0.0), (1.0, 0.5), (2.0, 1 - 2 ** -4), (math.sqrt(math.log2(2.5)), 0.6)])
def test_confidence_is_one_half_where_the_rule_fires(evidence: float, expected: float) -> None:
    assert confidence(evidence) == pytest.approx(expected)


@pytest.mark.parametrize(("c", "min_confidence", "score"), [
    (0.0, 0.6, 0.0), (0.3, 0.6, 0.25), (0.6, 0.6, 0.5), (0.8, 0.6, 0.75), (1.0, 0.6, 1.0),
    (0.5, 0.5, 0.5), (0.9, 0.8, 0.75)])
def test_the_minimum_confidence_maps_to_a_score_of_one_half(
        c: float, min_confidence: float, score: float) -> None:
    assert score_from_confidence(c, min_confidence) == pytest.approx(score)


def test_poisson_z_and_the_rate_bound() -> None:
    """Nothing observed, or no more than expected, is no evidence; three failed attempts where
    0.1 are expected is far beyond 3 sigma. A class with few runs is held to a generous rate."""
    assert poisson_z(0, 0.5) == 0.0
    assert poisson_z(1, 2.0) == 0.0
    assert poisson_z(3, 0.1) > 3.5
    assert poisson_z(2, 0.1) > poisson_z(1, 0.1) > 0
    assert rate_upper(0, 20) > 0.09 > rate_upper(0, 256) > 0
    assert rate_upper(60, 256) > 60 / 256


def test_rising_tells_a_ramp_from_noise() -> None:
    rng = np.random.default_rng(3)
    assert rising(np.linspace(0, 1, 16) + 0.1 * rng.standard_normal(16))
    assert not rising(rng.standard_normal(16))
    assert not rising(np.linspace(1, 0, 16))


# ----------------------------------------------------------------------------- hand-made runs

def test_a_job_five_sigma_slower_is_flagged_and_a_usual_one_is_not() -> None:
    """Given 200 runs of a class, when a run 5 sigma slower (log scale) arrives, then it scores
    above the default threshold on duration alone, with its z-score; a run at the median
    scores near 0."""
    detector = offline()
    warm(detector, np.random.default_rng(1))
    slow = detector.assess_job(job(200 * math.exp(5 * SIGMA)))
    assert slow.score >= detector.decision_threshold == 0.5
    assert slow.fired == ("duration",)
    assert slow.z["duration"] == pytest.approx(5, abs=0.8)
    usual = detector.assess_job(job(200))
    assert usual.score < 0.05 and usual.fired == ()


def test_every_class_scores_zero_during_its_warm_up() -> None:
    detector = offline()
    scores = [detector.score_job(job(200 * (50 if i == WARMUP_RUNS - 1 else 1) *
                                     math.exp(0.01 * i))) for i in range(WARMUP_RUNS)]
    assert scores == [0.0] * WARMUP_RUNS
    assert detector.score_job(job(200 * 50)) > 0.9  # the 21st run is judged


def test_classes_are_judged_apart() -> None:
    """2 s is a stuck email and an ordinary thumbnail."""
    detector = offline()
    rng = np.random.default_rng(2)
    warm(detector, rng, job_class="emails.send", median_ms=200)
    warm(detector, rng, job_class="media.thumbnail", median_ms=2000)
    assert detector.score_job(job(2000, job_class="emails.send")) > 0.9
    assert detector.score_job(job(2000, job_class="media.thumbnail")) < 0.05
    assert detector.classes == 2


def test_a_big_payload_is_judged_as_a_big_payload() -> None:
    """Given exports whose duration grows as items**0.9, when an export of 100x the usual rows
    takes ~60x as long, it is not flagged; the same duration for a usual export is."""
    detector = offline()
    rng = np.random.default_rng(4)
    for _ in range(300):
        items = int(math.exp(rng.uniform(math.log(100), math.log(100_000))))
        detector.score_job(job(900 * (items / 1000) ** 0.9 * math.exp(0.2 * rng.standard_normal()),
                               job_class="exports.csv", items=items))
    big = 900 * 100 ** 0.9
    assert detector.score_job(job(big, job_class="exports.csv", items=100_000)) < 0.1
    assert detector.score_job(job(big, job_class="exports.csv", items=1_000)) > 0.9


def test_memory_and_failures_are_signals_of_their_own() -> None:
    detector = offline()
    warm(detector, np.random.default_rng(5))
    leak = detector.assess_job(job(200, memory_mb=80 * 3))
    assert leak.fired == ("memory",) and leak.score > 0.9
    storm = detector.assess_job(job(200, attempts=7, failed=True))
    assert storm.fired == ("failures",) and storm.z["failures"] > 4


def test_a_burst_of_failures_is_flagged_but_usual_failures_are_not() -> None:
    """Given a class that never failed in 300 runs, then fails once in 50 runs (after two
    retries), its first failure is flagged but learned, as is every lone failure, so the later
    ones score low, and so does a run retried once then succeeding; failing runs one after the
    other are flagged, from the third."""
    detector = offline()
    rng = np.random.default_rng(6)
    warm(detector, rng, runs=300)
    failures = []
    for i in range(1, 701):
        failed = i % 50 == 0
        score = detector.score_job(job(200 * math.exp(SIGMA * rng.standard_normal()),
                                       failed=failed, attempts=3 if failed else 1))
        if failed:
            failures.append(score)
    assert failures[0] >= 0.5 and max(failures[-5:]) < 0.25
    warm(detector, rng, runs=20)
    assert detector.score_job(job(200, attempts=2)) < 0.1
    warm(detector, rng, runs=20)
    burst = [detector.score_job(job(30, failed=True, attempts=3)) for _ in range(4)]
    assert max(burst[:2]) < 0.5 <= min(burst[2:])


def test_an_incident_does_not_become_the_new_normal() -> None:
    """Given a class, when its runs get 10x slower without a deploy, then every one of them stays
    flagged (flagged runs are not learned), and the usual runs afterwards are still fine."""
    detector = offline()
    rng = np.random.default_rng(7)
    warm(detector, rng)
    incident = [detector.score_job(job(2000 * math.exp(SIGMA * rng.standard_normal())))
                for _ in range(100)]
    assert min(incident) >= 0.5
    assert detector.score_job(job(200)) < 0.05


def test_a_slower_release_is_adopted_and_a_leak_is_not() -> None:
    """Given a class, when a deploy makes it 3.5x slower for good, then the first 20 runs after
    the cold start are flagged and the later ones are not: the new level is adopted. When a
    deploy brings a leak (memory rising run after run), the rising runs stay flagged."""
    detector = offline()
    rng = np.random.default_rng(8)
    warm(detector, rng, release="r1")
    after = [detector.score_job(job(700 * math.exp(SIGMA * rng.standard_normal()),
                                    release="r2")) for _ in range(60)]
    flagged = [s >= 0.5 for s in after]
    assert sum(flagged[3:23]) >= 15  # the first 3 have the cold-start allowance
    assert sum(flagged[30:]) <= 2
    warm(detector, rng, release="r3", median_ms=700)
    leak = [detector.assess_job(job(700, memory_mb=80 * (1 + 0.08 * i), release="r4"))
            for i in range(60)]
    assert all(a.fired == ("memory",) for a in leak[30:])


def test_a_frozen_detector_flags_a_slower_release_for_good() -> None:
    """The adoption is what keeps the release above from being an alert storm."""
    detector = offline()
    rng = np.random.default_rng(8)
    warm(detector, rng, release="r1")
    detector.learning = False
    after = [detector.score_job(job(700 * math.exp(SIGMA * rng.standard_normal()),
                                    release="r2")) for _ in range(60)]
    assert sum(s >= 0.5 for s in after[30:]) >= 20


def test_the_first_runs_after_a_deploy_get_a_cold_start_allowance() -> None:
    detector = offline()
    warm(detector, np.random.default_rng(9), release="r1")
    assert detector.score_job(job(200 * 3, release="r2")) < 0.5
    assert detector.score_job(job(200 * 3, release="r2")) < 0.5
    detector.score_job(job(200, release="r2"))
    assert detector.score_job(job(200 * 3, release="r2")) >= 0.5


def test_the_settings_set_the_rule() -> None:
    """A stricter z-score and fence let a 4-sigma run pass; a lower minimum confidence flags a
    2.4-sigma run the shipped settings let pass; JOB_ANOMALY_THRESHOLD is the default
    threshold."""
    four_sigma = job(200 * math.exp(4 * SIGMA))
    below = job(200 * math.exp(2.4 * SIGMA))

    def scores(**env: str) -> tuple[float, float]:
        detector = offline(**env)
        warm(detector, np.random.default_rng(12))
        return (copy.deepcopy(detector).score_job(four_sigma),
                copy.deepcopy(detector).score_job(below))

    shipped = scores()
    assert shipped[0] >= 0.5 > shipped[1]
    assert scores(JOB_ANOMALY_ZSCORE_THRESHOLD="6", JOB_ANOMALY_IQR_MULTIPLIER="4")[0] < 0.5
    assert scores(JOB_ANOMALY_MIN_CONFIDENCE="0.3")[1] >= 0.5
    assert offline(JOB_ANOMALY_THRESHOLD="70").decision_threshold == 0.7


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_module, "MAX_CLASSES", 5)
    detector = offline()
    for i in range(50):
        detector.score_job(job(200, job_class=f"class-{i}"))
    assert detector.classes == 5
    warm(detector, np.random.default_rng(11), runs=600)
    level = detector._classes["emails.send"].duration
    assert len(level.y.view()) == queue_module.WINDOW_RUNS


@pytest.mark.parametrize(("field", "value", "message"), [
    ("duration_ms", None, "job.duration_ms: expected a number >= 0"),
    ("duration_ms", -1, "job.duration_ms: expected a number >= 0"),
    ("memory_mb", float("nan"), "job.memory_mb: expected a number"),
    ("attempts", 0, "job.attempts: expected a number >= 1"),
    ("job_class", "", "job.job_class: expected a non-empty string"),
    ("failed", "no", "job.failed: expected true/false"),
    ("items", "many", "job.items: expected a number"),
])
def test_a_bad_job_is_refused_naming_the_field(field: str, value: Any, message: str) -> None:
    detector = offline()
    with pytest.raises(ValidationError, match=message):
        detector.score_job({**job(200), field: value})
    assert detector.classes == 0


# ----------------------------------------------------------------------------- the generator

def test_the_generator_is_deterministic_and_in_time_order() -> None:
    a = generate(np.random.default_rng(1), 3000, drift="slower-job-class")
    assert a == generate(np.random.default_rng(1), 3000, drift="slower-job-class")
    assert a != generate(np.random.default_rng(2), 3000, drift="slower-job-class")
    assert len(a) == 3000
    stamps = [r.input["ts"] for r in a]
    assert stamps == sorted(stamps)
    assert set(a[0].input) == {"ts", "job_class", "queue", "duration_ms", "memory_mb", "failed",
                               "attempts", "items", "release"}
    with pytest.raises(ValueError, match="drift: expected one of"):
        generate(np.random.default_rng(1), 10, drift="faster")


def test_the_traffic_holds_every_anomaly_and_look_alike() -> None:
    runs = generate(np.random.default_rng(3), 20_000)
    kinds = {r.kind for r in runs}
    assert set(ANOMALIES) <= kinds and set(LOOKALIKES) <= kinds
    assert all(r.label == (r.kind in ANOMALIES) for r in runs)
    assert 0.01 < sum(r.label for r in runs) / len(runs) < 0.05


@pytest.mark.parametrize("drift", DRIFTS)
def test_a_drift_starts_at_its_time_and_its_runs_are_normal(drift: str) -> None:
    runs = generate(np.random.default_rng(4), 6000, drift=drift)
    drifted = [r for r in runs if r.kind == f"drift:{drift}"]
    assert drifted and not any(r.label for r in drifted)
    assert min(r.input["ts"] for r in drifted) >= drift_start(6000)


def test_the_naive_baseline_is_a_raw_z_score_over_every_class() -> None:
    baseline = NaiveZScore()
    durations = [100.0 + i % 3 for i in range(20)]
    assert [baseline.score_job(job(d)) for d in durations] == [0.0] * 20
    three_sigma = float(np.mean(durations) + 3 * np.std(durations, ddof=1))
    assert baseline.score_job(job(three_sigma)) == pytest.approx(0.5)
    assert baseline.score_job(job(50.0)) == 0.0  # faster is never anomalous
    assert naive_scores([job(1.0)] * 25)[-1] == 0.0


# ----------------------------------------------------------------------------- quality

def _online(runs: list[Any], detector: QueueAnomalyDetector) -> np.ndarray:
    return np.array([detector.score_job(r.input) for r in runs])


def _f1_auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    predicted = scores >= 0.5
    tp = float((predicted & labels).sum())
    f1 = 2 * tp / (predicted.sum() + labels.sum())
    diff = scores[labels][:, None] - scores[~labels][None, :]
    auc = float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)
    return f1, auc


def test_the_detector_beats_the_naive_baseline_clearly() -> None:
    """On 8,000 generated runs (benign look-alikes included), fed in time order, the detector's
    F1 and ROC AUC at the default threshold are far above the raw z-score's."""
    runs = generate(np.random.default_rng(21), 8000)
    labels = np.array([r.label for r in runs])
    ours = _f1_auc(labels, _online(runs, offline()))
    naive = _f1_auc(labels, np.array(naive_scores(r.input for r in runs)))
    assert ours[0] > 0.75 and ours[1] > 0.95
    assert ours[0] > naive[0] + 0.5 and ours[1] > naive[1] + 0.3


def test_a_slower_job_class_costs_the_adapting_detector_little() -> None:
    """Under the slower-job-class drift, the detector flags few of the (normal) slower runs;
    a copy frozen when the drift starts flags most of them."""
    n = 8000
    runs = generate(np.random.default_rng(22), n, drift="slower-job-class")
    start = drift_start(n)
    detector = offline()
    before = [r for r in runs if r.input["ts"] < start]
    _online(before, detector)
    frozen = copy.deepcopy(detector)
    frozen.learning = False
    after = [r for r in runs if r.input["ts"] >= start]
    drifted = np.array([r.kind == "drift:slower-job-class" for r in after])
    ours = _online(after, detector)
    theirs = _online(after, frozen)
    assert (ours[drifted] >= 0.5).mean() < 0.05
    assert (theirs[drifted] >= 0.5).mean() > 0.5


# ----------------------------------------------------------------------------- online

@pytest.fixture
def client(registry: Registry, redis_url: str) -> Any:
    """A client reading the test's registry, whose events go to a broker database of their
    own (db 15), so the session's worker never counts them; the journal shows what was sent."""
    register_catalogue(registry)
    broker = redis_url.rsplit("/", 1)[0] + "/15"
    client = MonitoringClient(broker, redis_url=redis_url, config_ttl_s=0.2,
                              flush_interval_ms=20, settings=registry.settings)
    yield client
    client.close(timeout=2)
    redis.Redis.from_url(broker).flushdb()


def _sent(raw: redis.Redis) -> list[dict[str, Any]]:
    """Every prediction the client sent, from the journal (one dict per event, its columns
    binary or not, as a dead letter shows it)."""
    out = []
    for batch_id in raw.zrange(keys.journal(MODEL), 0, -1):
        _, body = journal.decode(raw.get(keys.journal_entry(MODEL, batch_id.decode())))
        out.extend(events.original_event(body, i) for i in range(body["n"]))
    return out


def test_an_auto_tuned_threshold_changes_the_decisions_after_the_ttl(
        client: MonitoringClient, registry: Registry, raw: redis.Redis) -> None:
    """Given the detector online, when a run scoring between 0.5 and 0.8 is flagged and then
    the registry's threshold goes to 0.8, then within the client's config TTL the same run is
    not flagged; both predictions are reported with the threshold's decision and the run's
    class, signal and z-scores as metadata."""
    detector = QueueAnomalyDetector(client=client)
    warm(detector, np.random.default_rng(12))
    borderline = job(200 * math.exp(3.0 * SIGMA))
    first = detector.detect_job(borderline, actual=True)
    assert 0.5 <= first.score < 0.8 and first.decision and first.threshold == 0.5
    assert first.prediction_id is not None

    registry.set_config(MODEL, actor="auto-tuner", changes=[("decision_threshold", 0.8)])
    wait_for(lambda: detector.decision_threshold == 0.8, timeout=5, what="the new threshold")
    second = detector.detect_job(borderline)
    assert second.score == pytest.approx(first.score)  # a flagged run is not learned
    assert not second.decision and second.threshold == 0.8

    assert client.flush(10)
    sent = _sent(raw)
    assert [(e["predicted"], e.get("actual")) for e in sent] == [(1, 1), (0, None)]
    metadata = sent[0]["metadata"]
    assert set(metadata) == {"job_class", "signals", "z"}
    assert metadata["job_class"] == "emails.send" and metadata["signals"] == ["duration"]
    assert metadata["z"]["duration"] > 3 and metadata["z"]["memory"] < 3


def test_a_disabled_model_neither_scores_nor_reports(
        client: MonitoringClient, registry: Registry, raw: redis.Redis) -> None:
    """Given the model disabled in the registry, detect_job returns no score and no decision,
    learns nothing and reports nothing; enabled again, it scores and reports."""
    registry.set_config(MODEL, actor="ops", changes=[("enabled", False)])
    detector = QueueAnomalyDetector(client=client)
    off = detector.detect_job(job(200 * 50))
    assert off.enabled is False and off.score == 0.0 and not off.decision
    assert off.prediction_id is None and detector.classes == 0
    assert client.stats()["recorded"] == 0

    registry.set_config(MODEL, actor="ops", changes=[("enabled", True)])
    wait_for(lambda: detector.enabled, timeout=5, what="the model enabled")
    on = detector.detect_job(job(200))
    assert on.enabled and on.prediction_id is not None and detector.classes == 1
    assert client.flush(10)
    assert len(_sent(raw)) == 1


def test_the_registry_params_set_the_rule_online(
        client: MonitoringClient, registry: Registry) -> None:
    """The registry's params (zscore_threshold, iqr_multiplier, min_confidence) override the
    settings when the detector runs online."""
    detector = QueueAnomalyDetector(client=client)
    warm(detector, np.random.default_rng(13))
    five_sigma = job(200 * math.exp(5 * SIGMA))
    assert detector.assess_job(five_sigma).score >= 0.5
    registry.set_config(MODEL, actor="ops", changes=[("params.zscore_threshold", 8.0),
                                                     ("params.iqr_multiplier", 5.0)])
    wait_for(lambda: detector.params.zscore_threshold == 8.0, timeout=5, what="the params")
    assert detector.assess_job(five_sigma).score < 0.5
