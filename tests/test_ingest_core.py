"""The pure numeric core of ingest: validation, quantizers, increments, metric formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from mlops_tasks.binning import (
    SCORE_BINS,
    coarse_bin,
    coarse_value,
    fine_code,
    fine_decode,
    score_bins,
    threshold_bin,
)
from mlops_tasks.ingest import events
from mlops_tasks.ingest.increments import (
    HIST_ROWS,
    Increments,
    add_outcomes,
    add_predictions,
    pack_pending,
    unpack_pending,
)
from mlops_tasks.metrics import confusion_metrics, histogram_quantiles, samples_to_detect_drop
from mlops_tasks.timebuckets import bucket_range, covering, granularities
from mlops_tasks.windows import counter_metrics

NOW = 1_800_000_000.0
MAX_AGE = 90 * 86400


def batch(**cols):
    n = len(cols.get("score", [])) if isinstance(cols.get("score"), list) else cols.pop("n", 1)
    return {"v": 1, "kind": "predictions", "batch_id": "b", "model": "m", "n": n, **cols}


def test_valid_events_pass_and_scalars_broadcast() -> None:
    preds, rejects = events.decode_predictions(
        batch(score=[0.1, 0.9], version="1.0.0", timestamp=NOW - 5, actual=[True, None]),
        now=NOW, max_age_s=MAX_AGE)
    assert rejects == []
    assert preds.version == ["1.0.0", "1.0.0"]
    assert preds.timestamp.tolist() == [NOW - 5, NOW - 5]
    assert preds.actual.tolist() == [1, -1]


@pytest.mark.parametrize(("cols", "reason"), [
    ({"score": [1.5]}, "score: expected a number in [0, 1], got 1.5"),
    ({"score": [float("nan")]}, "score: expected a number in [0, 1], got nan"),
    ({"score": ["0.5"]}, "score: expected a number, got '0.5'"),
    ({"score": [True]}, "score: expected a number, got True"),
    ({"score": [None]}, "score: required"),
    ({"score": [0.5], "actual": ["yes"]}, "actual: expected true/false or 1/0, got 'yes'"),
    ({"score": [0.5], "actual": [2]}, "actual: expected true/false or 1/0, got 2"),
    ({"score": [0.5], "predicted": [0.5]}, "predicted: expected true/false or 1/0, got 0.5"),
    ({"score": [0.5], "latency_ms": [-1]}, "latency_ms: expected a number >= 0, got -1.0"),
    ({"score": [0.5], "version": ["v1"]}, "version: expected a semantic version"),
    ({"score": [0.5], "timestamp": [NOW + 3600]}, "timestamp: expected epoch seconds"),
    ({"score": [0.5], "timestamp": [NOW - 100 * 86400]}, "timestamp: expected epoch seconds"),
    ({"score": [0.5], "prediction_id": [""]}, "prediction_id: expected a string of 1-128"),
    ({"score": [0.5], "metadata": ["x"]}, "metadata: expected an object, got str"),
])
def test_a_bad_field_rejects_only_its_event(cols, reason) -> None:
    good = {k: ([v[0]] if isinstance(v, list) else v) for k, v in cols.items()}
    merged = {k: ([*v, None] if isinstance(v, list) and k != "score" else v)
              for k, v in good.items()}
    merged["score"] = cols["score"] + [0.25]
    preds, rejects = events.decode_predictions(batch(**merged), now=NOW, max_age_s=MAX_AGE)
    assert [r.index for r in rejects] == [0]
    assert rejects[0].reason.startswith(reason), rejects[0].reason
    assert preds.score.tolist() == [0.25] and preds.index.tolist() == [1]


@pytest.mark.parametrize(("msg", "reason"), [
    ({"v": 2}, "v: expected wire version 1"),
    ({"batch_id": ""}, "batch_id: expected a string"),
    ({"model": "Bad Model"}, "model: expected a model name"),
    ({"n": 3}, "score: expected 3 values, got 2"),
])
def test_a_malformed_batch_is_rejected_whole(msg, reason) -> None:
    base = batch(score=[0.1, 0.2])
    base.update(msg)
    with pytest.raises((events.BatchError, ValueError), match=reason):
        events.decode_predictions(base, now=NOW, max_age_s=MAX_AGE)


def test_generated_ids_and_original_events() -> None:
    msg = batch(score=[0.1, 0.2], id_prefix="abc-", id_start=9)
    preds, _ = events.decode_predictions(msg, now=NOW, max_age_s=MAX_AGE)
    assert preds.prediction_id == ["abc-9", "abc-a"]
    assert events.original_event(msg, 1) == {"score": 0.2, "prediction_id": "abc-a"}


def test_labels_need_an_id_and_a_value() -> None:
    msg = {"v": 1, "kind": "labels", "batch_id": "l", "model": "m", "n": 3,
           "prediction_id": ["a", None, "c"], "actual": [1, 0, None]}
    labels, rejects = events.decode_labels(msg, now=NOW, max_age_s=MAX_AGE)
    assert labels.prediction_id == ["a"]
    assert [(r.index, r.reason) for r in rejects] == [
        (1, "prediction_id: required"), (2, "actual: required (true/false or 1/0)")]


def test_score_bins_are_exact_on_the_threshold_lattice() -> None:
    grid = np.round(np.arange(0.0, 1.0001, 0.05), 2)
    for t in grid:
        scores = np.array([t, np.nextafter(t, 0) if t > 0 else 0.0, min(t + 1e-4, 1.0)])
        positive = score_bins(scores) >= threshold_bin(t)
        assert positive.tolist() == (scores >= t - 1e-12).tolist()
    assert score_bins(np.array([0.0, 1.0])).tolist() == [0, SCORE_BINS - 1]


def test_log_codes_round_trip_within_their_resolution() -> None:
    values = np.array([0.002, 0.5, 3.2, 47.0, 1234.5, 98765.0])
    assert np.allclose(fine_decode(fine_code(values)), values, rtol=0.006)
    assert fine_code(np.array([np.nan]))[0] == 0
    bins = coarse_bin(values, 0.001)
    assert np.all(np.abs(coarse_value(bins, 0.001) / values - 1) < 0.1)


def test_metrics_are_none_when_undefined() -> None:
    m = confusion_metrics(tp=0, fp=0, tn=5, fn=0)
    assert m["accuracy"] == 1.0
    assert m["precision"] is None and m["recall"] is None and m["f1"] is None
    assert m["false_positive_rate"] == 0.0
    assert confusion_metrics(0, 0, 0, 0)["accuracy"] is None


def test_increments_give_scikit_learn_metrics_and_exact_threshold_counts() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    scores = rng.random(n)
    actual = (rng.random(n) < scores).astype(np.int8)
    predicted = (scores >= 0.6).astype(np.int8)
    times = NOW - rng.random(n) * 7200
    grans = granularities(90)
    inc = Increments()
    add_predictions(inc, grans, ["1.0.0"] * n, times, scores, np.full(n, np.nan))
    add_outcomes(inc, grans, ["1.0.0"] * n, times, scores, actual, predicted,
                 np.full(n, np.nan))
    total = inc.totals["1.0.0"]
    m = counter_metrics({**total.counts, **total.sums})
    assert m["count"] == n
    assert m["accuracy"] == pytest.approx(accuracy_score(actual, predicted))
    assert m["precision"] == pytest.approx(precision_score(actual, predicted))
    assert m["recall"] == pytest.approx(recall_score(actual, predicted))
    assert m["f1"] == pytest.approx(f1_score(actual, predicted))
    assert m["avg_confidence"] == pytest.approx(scores.mean())
    # Every granularity holds every event once.
    for g in grans:
        hist = sum(d.hist for (v, code, _), d in inc.buckets.items() if code == g.code)
        rows = hist.reshape(HIST_ROWS, SCORE_BINS)
        assert rows[4].sum() == n and rows[:4].sum() == n
        # At any lattice threshold, positives from the histogram equal a direct count.
        for t in (0.4, 0.55, 0.9):
            positives = rows[:4, threshold_bin(t):].sum()
            assert positives == int(np.sum(scores >= t))


def test_recent_ring_keeps_the_last_thousand_in_order() -> None:
    inc = Increments()
    n = 1500
    scores = np.linspace(0, 1, n)
    add_outcomes(inc, granularities(90), ["1.0.0"] * n, np.full(n, NOW), scores,
                 np.ones(n, np.int8), np.ones(n, np.int8), np.full(n, np.nan))
    ring = inc.recent["1.0.0"]
    assert len(ring) == 1000


def test_pending_records_round_trip() -> None:
    recs = pack_pending(np.array([600, 1000]), np.array([0.6004, 1.0]), np.array([NOW, NOW + 61]),
                        np.array([3.5, np.nan]), np.array([0, 2]), np.array([1, 0], np.int8))
    assert all(len(r) == 12 for r in recs)
    out = unpack_pending(recs)
    assert out["bin"].tolist() == [600, 1000]
    assert out["vidx"].tolist() == [0, 2] and out["predicted"].tolist() == [1, 0]
    assert out["score"][0] == pytest.approx(0.6004, abs=1e-4)
    assert abs(out["time"][1] - (NOW + 61)) <= 60


def test_histogram_quantiles_are_within_a_bin() -> None:
    values = np.random.default_rng(1).lognormal(1.0, 1.0, 20000)
    counts = np.bincount(coarse_bin(values, 0.01), minlength=256)
    p50, p95 = histogram_quantiles(counts, (0.5, 0.95), 0.01)
    assert p50 == pytest.approx(np.quantile(values, 0.5), rel=0.1)
    assert p95 == pytest.approx(np.quantile(values, 0.95), rel=0.1)


def test_time_buckets_cover_the_window() -> None:
    g = covering(3600, 90)
    assert g.code == "m"
    starts = bucket_range(NOW, 3600, g)
    assert starts[0] <= NOW - 3600 < starts[0] + 60 and starts[-1] <= NOW < starts[-1] + 60
    assert covering(3 * 86400, 90).code == "h" and covering(30 * 86400, 90).code == "d"


def test_sample_size_for_a_five_percent_drop() -> None:
    n = samples_to_detect_drop(0.85)
    assert 900 < n < 1300
    assert samples_to_detect_drop(1.0) is None


def test_journal_entries_round_trip_exactly() -> None:
    from mlops_tasks.ingest.journal import decode, encode

    body = {"v": 1, "kind": "predictions", "batch_id": "b", "model": "m", "n": 3,
            "score": [0.1, 1 / 3, 0.9999999999999999], "latency_ms": [1.5, None, 2.0],
            "actual": [1, -1, 0], "id_prefix": "p-", "id_seq": [1, 2, 3],
            "metadata": [None, {"route": "/"}, None], "timestamp_base": 1.8e9,
            "timestamp_ms": [0, 5, 9]}
    task, out = decode(encode("mlops.ingest.predictions", body))
    assert task == "mlops.ingest.predictions" and out == body


def test_binary_columns_decode_exactly_like_json_lists() -> None:
    """Given buffered rows with every kind of value (unknown flags, missing latencies, ids out
    of order), when the client builds a message with binary columns, then the worker decodes
    exactly the events the JSON-list form of the same batch gives, bit for bit, and the journal
    keeps the message unchanged."""
    from mlops_tasks.client.buffer import predictions_message
    from mlops_tasks.ingest.journal import decode, encode

    rng = np.random.default_rng(3)
    n = 257
    scores = [*rng.random(n - 2).tolist(), 0.0, 1.0]
    stamps = (NOW - rng.random(n) * 3000).tolist()
    rows = [("m", scores[i], [None, 0, 1][i % 3], [1, None, 0, None][i % 4], f"p-{i * 7:x}",
             i * 7, "1.0.0", None if i % 5 == 0 else float(i) / 3, stamps[i], None)
            for i in range(n)]
    msg = predictions_message("m", rows, "p-").body
    msg["batch_id"] = "b"
    assert isinstance(msg["score"], dict) and isinstance(msg["id_seq"], dict)
    as_lists = batch(score=scores, predicted=[r[2] for r in rows], actual=[r[3] for r in rows],
                     latency_ms=[r[7] for r in rows], timestamp=stamps, version="1.0.0",
                     prediction_id=[r[4] for r in rows])

    binary, rejects = events.decode_predictions(msg, now=NOW, max_age_s=MAX_AGE)
    lists, list_rejects = events.decode_predictions(as_lists, now=NOW, max_age_s=MAX_AGE)

    assert rejects == list_rejects == []
    for name in ("score", "predicted", "actual", "timestamp", "latency_ms"):
        assert np.array_equal(getattr(binary, name), getattr(lists, name), equal_nan=True), name
    assert binary.prediction_id == lists.prediction_id
    assert binary.version == lists.version
    task, back = decode(encode("mlops.ingest.predictions", msg))
    assert task == "mlops.ingest.predictions" and back == msg


def test_consecutive_generated_ids_go_as_a_start() -> None:
    """Ids the client generated in order go as the prefix and the first counter only."""
    from mlops_tasks.client.buffer import predictions_message

    rows = [("m", 0.5, None, None, f"p-{i:x}", i, None, None, NOW, None)
            for i in range(40, 50)]
    body = predictions_message("m", rows, "p-").body
    assert body["id_start"] == 40 and "id_seq" not in body
    body["batch_id"] = "b"
    preds, _ = events.decode_predictions(body, now=NOW, max_age_s=MAX_AGE)
    assert preds.prediction_id == [f"p-{i:x}" for i in range(40, 50)]
