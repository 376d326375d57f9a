"""The ingest path against a real Redis: exact metrics, delayed labels, dead letters,
idempotency."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from mlops_tasks import keys
from mlops_tasks.ingest.store import id_digest

MODEL = "n1-detector"


def predictions(batch_id: str, scores, **cols) -> dict:
    return {"v": 1, "kind": "predictions", "batch_id": batch_id, "model": cols.pop("model", MODEL),
            "n": len(scores), "score": list(scores), **cols}


def labels(batch_id: str, ids, actual, **cols) -> dict:
    return {"v": 1, "kind": "labels", "batch_id": batch_id, "model": MODEL, "n": len(ids),
            "prediction_id": list(ids), "actual": list(actual), **cols}


def sk(actual, predicted) -> dict:
    return {"accuracy": accuracy_score(actual, predicted),
            "precision": precision_score(actual, predicted),
            "recall": recall_score(actual, predicted), "f1": f1_score(actual, predicted)}


def assert_matches(metrics: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value), key


def test_a_stream_of_labeled_events_gives_scikit_learn_metrics(ingestor, reader) -> None:
    """Given 6,000 events in batches, half labeled at once and half labeled later, when they are
    ingested, then every window equals scikit-learn on the same outcomes."""
    rng = np.random.default_rng(3)
    n = 6000
    scores = rng.random(n).round(6)
    actual = (rng.random(n) < scores * 0.8 + 0.1).astype(int)
    predicted = (scores >= 0.6).astype(int)  # the default decision threshold of n1-detector
    immediate = np.arange(n) % 2 == 0
    order = []  # outcomes in the order their labels reach the system
    for b in range(0, n, 500):
        sl = slice(b, b + 500)
        acts = np.where(immediate[sl], actual[sl], -1).tolist()
        ingestor.ingest_predictions(predictions(
            f"p{b}", scores[sl], actual=acts, id_prefix="id-", id_start=b,
            latency_ms=(scores[sl] * 10).tolist()))
        order.extend(i for i in range(b, b + 500) if immediate[i])
    late = [i for i in range(n) if not immediate[i]]
    for b in range(0, len(late), 700):
        chunk = late[b:b + 700]
        ingestor.ingest_labels(labels(f"l{b}", [f"id-{i:x}" for i in chunk],
                                      actual[chunk].tolist()))
        order.extend(chunk)
    order = np.array(order)

    w = reader.windows(MODEL, "1.0.0")
    assert w["since_deployment"]["count"] == n and w["since_deployment"]["predictions"] == n
    assert_matches(w["since_deployment"], sk(actual, predicted))
    assert_matches(w["last_hour"], sk(actual, predicted))
    for name, k in (("last_100", 100), ("last_1000", 1000)):
        tail = order[-k:]
        assert w[name]["count"] == k
        assert_matches(w[name], sk(actual[tail], predicted[tail]))
    fp, tn = np.sum((predicted == 1) & (actual == 0)), np.sum((predicted == 0) & (actual == 0))
    assert w["since_deployment"]["false_positive_rate"] == pytest.approx(fp / (fp + tn))
    assert w["since_deployment"]["avg_confidence"] == pytest.approx(scores.mean(), abs=1e-4)
    assert w["last_100"]["latency_p50_ms"] == pytest.approx(
        np.median(scores[order[-100:]] * 10), rel=0.02)
    assert reader.pending(MODEL) == 0


def test_delayed_labels_orphans_and_pending_counts(ingestor, reader, raw) -> None:
    ids = [f"q{i}" for i in range(300)]
    ingestor.ingest_predictions(predictions("p", [0.7] * 300, prediction_id=ids))
    assert reader.pending(MODEL) == 300
    result = ingestor.ingest_labels(labels("l", [*ids[:100], "ghost-1", "ghost-2"],
                                           [1] * 100 + [0, 1]))
    assert (result["joined"], result["orphans"]) == (100, 2)
    assert reader.pending(MODEL) == 200
    counters = reader.counters(MODEL)
    assert counters["orphan_labels"] == 2 and counters["labels_joined"] == 100
    # A label for an already-joined prediction is an orphan too.
    ingestor.ingest_labels(labels("l2", ids[:1], [1]))
    assert reader.counters(MODEL)["orphan_labels"] == 3
    totals = reader.totals(MODEL, "1.0.0")
    assert totals["labeled"] == 100 and totals["tp"] == 100 and totals["n"] == 300


def test_the_pending_table_splits_and_stays_compact(ingestor, reader, raw) -> None:
    n, half = 20_000, 10_000  # two messages of the largest size a message may have
    for part in range(2):
        ingestor.ingest_predictions(predictions(f"big{part}", [0.3] * half, id_prefix="big-",
                                                id_start=part * half))
    meta = raw.hgetall(keys.pending_meta(MODEL))
    assert int(meta[b"count"]) == n
    buckets = [k for k in raw.scan_iter(keys.pending_prefix(MODEL) + "*", count=1000)
               if not k.endswith(b"meta")]
    assert len(buckets) > 16 * 8
    assert {raw.object("encoding", k) for k in buckets[:50]} <= {b"listpack", b"ziplist"}
    for part in range(2):
        ids = [f"big-{i:x}" for i in range(part * half, (part + 1) * half)]
        joined = ingestor.ingest_labels(labels(f"lab{part}", ids, [0] * half))
        assert joined["joined"] == half
    assert reader.pending(MODEL) == 0


def test_duplicate_prediction_ids_are_counted(ingestor, reader) -> None:
    ingestor.ingest_predictions(predictions("a", [0.2], prediction_id=["same"]))
    result = ingestor.ingest_predictions(predictions("b", [0.9], prediction_id=["same"]))
    assert result["duplicates"] == 1
    assert reader.counters(MODEL)["duplicate_ids"] == 1
    assert reader.pending(MODEL) == 1


def test_bad_events_are_dead_lettered_and_the_rest_is_counted(ingestor, reader, r) -> None:
    result = ingestor.ingest_predictions(predictions(
        "mixed", [0.9, 1.4, 0.1, 0.5], actual=[1, 0, "nope", 0],
        version=[None, None, None, "9.9.9"]))
    assert result["accepted"] == 1 and result["dead_letters"] == 3
    totals = reader.totals(MODEL, "1.0.0")
    assert totals["n"] == 1 and totals["tp"] == 1
    from mlops_tasks import deadletters

    letters = deadletters.read(r, [MODEL], MODEL)
    reasons = sorted(x["reason"] for x in letters)
    assert reasons == ["actual: expected true/false or 1/0, got 'nope'",
                       "score: expected a number in [0, 1], got 1.4",
                       f"version: 9.9.9 is not registered for {MODEL}"]
    assert {x["index"] for x in letters} == {1, 2, 3}
    assert letters[0]["event"]["score"] in (1.4, 0.1, 0.5)
    assert reader.counters(MODEL)["dead_letters"] == 3


def test_events_for_unknown_or_malformed_models_are_dead_lettered(ingestor, registry, r) -> None:
    from mlops_tasks import deadletters

    ingestor.ingest_predictions(predictions("u", [0.1, 0.2], model="ghost-model"))
    ghost = deadletters.read(r, registry.model_names(), "ghost-model")
    assert deadletters.counts(r, registry.model_names())["ghost-model"] == 2
    assert [x["reason"] for x in ghost] == ["model: 'ghost-model' is not registered"] * 2
    ingestor.ingest_predictions(predictions("bad", [0.1], model="Bad Name!"))
    invalid = deadletters.read(r, [], None)
    assert any(x["reason"].startswith("model: expected a model name") for x in invalid)


def test_a_redelivered_batch_is_counted_once(ingestor, reader) -> None:
    msg = predictions("again", [0.9, 0.1, 0.8], actual=[1, 0, -1], prediction_id=["x", "y", "z"])
    first = ingestor.ingest_predictions(msg)
    second = ingestor.ingest_predictions(msg)
    assert first["applied"] and not second["applied"]
    lab = labels("lab-again", ["z"], [1])
    ingestor.ingest_labels(lab)
    ingestor.ingest_labels(lab)
    totals = reader.totals(MODEL, "1.0.0")
    assert (totals["n"], totals["labeled"], totals["tp"]) == (3, 3, 2)
    assert reader.pending(MODEL) == 0
    assert reader.counters(MODEL).get("orphan_labels", 0) == 0


def test_a_crash_between_claim_and_apply_loses_no_label(ingestor, reader) -> None:
    """Given a label batch whose claim ran but whose apply did not (the worker died), when the
    batch is delivered again, then its labels are joined exactly once."""
    ingestor.ingest_predictions(predictions("p", [0.9, 0.2], prediction_id=["a", "b"]))
    claimed = ingestor.store.claim(MODEL, "crashy", [id_digest("a"), id_digest("b")])
    assert len(claimed) == 2 and reader.pending(MODEL) == 0
    result = ingestor.ingest_labels(labels("crashy", ["a", "b"], [1, 0]))
    assert result["joined"] == 2 and result["orphans"] == 0
    ingestor.ingest_labels(labels("crashy", ["a", "b"], [1, 0]))
    totals = reader.totals(MODEL, "1.0.0")
    assert (totals["labeled"], totals["tp"], totals["tn"]) == (2, 1, 1)


def test_decisions_default_to_the_current_threshold_and_versions_to_production(
        ingestor, registry, reader) -> None:
    registry.set_config(MODEL, actor="t", changes=[("decision_threshold", 0.8)])
    ingestor.ingest_predictions(predictions("t", [0.7, 0.85], actual=[1, 1]))
    totals = reader.totals(MODEL, "1.0.0")
    assert (totals["fn"], totals["tp"]) == (1, 1)
    cfg = registry.current(MODEL)["config"]
    from mlops_tasks.registry import ModelConfig

    registry.register(MODEL, "2.0.0", ModelConfig.from_dict(cfg), actor="t")
    registry.deploy(MODEL, "1.0.0", "production", actor="t")
    ingestor.ingest_predictions(predictions("v", [0.5], actual=[0]))
    ingestor.ingest_predictions(predictions("v2", [0.5], actual=[0], version="2.0.0"))
    assert reader.totals(MODEL, "1.0.0")["n"] == 3
    assert reader.totals(MODEL, "2.0.0")["n"] == 1


def test_time_windows_follow_the_clock(ingestor, reader, registry, raw) -> None:
    now = time.time()
    ingestor.ingest_predictions(predictions("old", [0.9] * 10, actual=[0] * 10,
                                            timestamp=now - 3 * 3600))
    ingestor.ingest_predictions(predictions("new", [0.9] * 5, actual=[1] * 5, timestamp=now))
    last_hour = reader.windows(MODEL, "1.0.0")["last_hour"]
    assert last_hour["count"] == 5 and last_hour["accuracy"] == 1.0
    day = reader.time_window(MODEL, "1.0.0", 86400, with_hist=False).counts
    assert day["labeled"] == 15
    assert reader.totals(MODEL, "1.0.0")["labeled"] == 15
    for key in raw.scan_iter(b"mlops:*:agg:*"):
        assert raw.ttl(key) != -1  # every bucket expires: bounded by time, not by count


def test_a_label_that_overtakes_its_prediction_is_retried_before_it_is_an_orphan(
        ingestor, reader) -> None:
    """Given a label batch processed before its predictions (another worker had them), when the
    retry runs after the predictions arrived, then the labels join; a label whose prediction
    never comes becomes an orphan after the last retry."""
    from mlops_tasks.ingest.pipeline import LABEL_RETRY_DELAYS_S

    queued: list[tuple[dict, float]] = []
    first = ingestor.ingest_labels(labels("early", ["e1", "e2", "never"], [1, 0, 1]),
                                   requeue=lambda b, d: queued.append((b, d)))
    assert (first["joined"], first["retried"], first["orphans"]) == (0, 3, 0)
    ingestor.ingest_predictions(predictions("late", [0.9, 0.1], prediction_id=["e1", "e2"]))
    retry, delay = queued.pop()
    assert delay == LABEL_RETRY_DELAYS_S[0] and retry["attempt"] == 1
    ingestor.ingest_labels(retry, requeue=lambda b, d: queued.append((b, d)))
    assert reader.totals(MODEL, "1.0.0")["labeled"] == 2
    # The same retry delivered twice changes nothing.
    ingestor.ingest_labels(retry, requeue=lambda b, d: queued.append((b, d)))
    assert reader.totals(MODEL, "1.0.0")["labeled"] == 2
    while queued:
        batch, _ = queued.pop(0)
        ingestor.ingest_labels(batch, requeue=lambda b, d: queued.append((b, d)))
    assert reader.counters(MODEL)["orphan_labels"] == 1
