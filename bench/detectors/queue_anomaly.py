"""queue-anomaly against the naive baseline on generated, labeled job runs.

Both run online, as in production: the runs are fed in time order and each is scored before it
is learned. The detector is QueueAnomalyDetector with the shipped settings and no client (its
default decision threshold, JOB_ANOMALY_THRESHOLD=50 -> 0.50); the baseline is the raw z-score of
the duration against every earlier run (mlops_tasks.simulator.queue.NaiveZScore), whose score is
0.5 at 3 standard deviations. Each scenario (no drift, then each drift kind from half-way) is
generated from the same seed, so the runs before the drift are the same. After a drift, a copy of
the detector frozen when the drift starts (``learning = False``) shows what the drift does to a
detector that does not adapt.

    .venv/bin/python bench/detectors/queue_anomaly.py [--n 20000] [--seed 7]

Progress goes to stderr; stdout gets the tables and, as its last line, one JSON document
(``evaluate(n, seed)``'s result).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from _quality import log, main, quality, row

from mlops_tasks.detectors.queue import QueueAnomalyDetector
from mlops_tasks.settings import Settings
from mlops_tasks.simulator.queue import DRIFTS, drift_start, generate, naive_scores

THRESHOLD = 0.5  # both: the detector's shipped default and the baseline's 3 sigma


def best_in_tuning_range(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The threshold of the auto-tuning grid (0.40-0.80 by 0.05) with the best F1 (the lowest
    on a tie), and its F1."""
    grid = [round(0.40 + 0.05 * i, 2) for i in range(9)]
    f1, threshold = max((quality(labels, scores, t)["f1"], -t) for t in grid)
    return {"threshold": -threshold, "f1": f1}


def by_kind(kinds: Sequence[str], scores: np.ndarray) -> dict[str, dict[str, float]]:
    """Per kind of run: how many, and the share flagged (recall for anomalies, the false
    positive rate for the rest)."""
    out: dict[str, dict[str, float]] = {}
    arr = np.array(kinds)
    for kind in sorted(set(kinds)):
        mask = arr == kind
        out[kind] = {"n": int(mask.sum()),
                     "flagged": round(float((scores[mask] >= THRESHOLD).mean()), 4)}
    return out


def scenario(n: int, seed: int, drift: str | None) -> dict[str, Any]:
    """One scenario; under a drift, also a copy of the detector frozen when the drift starts
    (it scores the rest without learning: what a detector that does not adapt would do)."""
    runs = generate(np.random.default_rng(seed), n, drift=drift)
    labels = np.array([r.label for r in runs])
    kinds = [r.kind for r in runs]
    after = np.array([r.input["ts"] >= drift_start(n) for r in runs]) if drift else None
    started = time.perf_counter()
    detector = QueueAnomalyDetector(settings=Settings.from_env({}))
    assert detector.decision_threshold == THRESHOLD  # noqa: S101 - the table's premise
    ours = np.zeros(n)
    frozen_scores = np.zeros(n)
    frozen = None
    for i, run in enumerate(runs):
        if after is not None and frozen is None and after[i]:
            frozen = copy.deepcopy(detector)
            frozen.learning = False
        ours[i] = detector.score_job(run.input)
        if frozen is not None:
            frozen_scores[i] = frozen.score_job(run.input)
    per_run_us = (time.perf_counter() - started) / n * 1e6
    naive = np.array(naive_scores(r.input for r in runs))
    result: dict[str, Any] = {
        "drift": drift, "n": n, "positives": int(labels.sum()),
        "detector": quality(labels, ours, THRESHOLD), "naive": quality(labels, naive, THRESHOLD),
        "detector_best_in_tuning_range": best_in_tuning_range(labels, ours),
        "detector_by_kind": by_kind(kinds, ours), "naive_by_kind": by_kind(kinds, naive),
        "detector_us_per_run": round(per_run_us, 1)}
    if after is not None:
        result["after_drift"] = {
            "detector": quality(labels[after], ours[after], THRESHOLD),
            "frozen": quality(labels[after], frozen_scores[after], THRESHOLD),
            "naive": quality(labels[after], naive[after], THRESHOLD),
            "frozen_by_kind": by_kind([k for k, a in zip(kinds, after, strict=True) if a],
                                      frozen_scores[after])}
    return result


def evaluate(n: int = 20_000, seed: int = 7) -> dict[str, Any]:
    """The figures of every scenario: precision, recall, F1 and ROC AUC of the detector and of
    the naive baseline at the threshold 0.5, and the share flagged of each kind of run."""
    scenarios = []
    for drift in (None, *DRIFTS):
        log(f"scenario {drift or 'no drift'}: {n} runs, seed {seed}")
        scenarios.append(scenario(n, seed, drift))
    return {"benchmark": "detectors/queue", "model": "queue-anomaly", "n": n, "seed": seed,
            "threshold": THRESHOLD, "scenarios": scenarios}



def print_tables(result: dict[str, Any]) -> None:
    widths = (20, 12, 6, 6, 6, 6, 6)
    print(f"queue-anomaly vs naive z-score: {result['n']} runs per scenario, seed "
          f"{result['seed']}, threshold {result['threshold']}")
    print(row(("scenario", "scorer", "prec", "recall", "F1", "AUC", "pos"), widths))
    for s in result["scenarios"]:
        for who in ("detector", "naive"):
            q = s[who]
            print(row((s["drift"] or "no drift", who, f"{q['precision']:.3f}",
                        f"{q['recall']:.3f}", f"{q['f1']:.3f}", f"{q['roc_auc']:.3f}",
                        s["positives"]), widths))
        if "after_drift" in s:
            for who in ("detector", "frozen", "naive"):
                q = s["after_drift"][who]
                print(row(("  after the drift", who, f"{q['precision']:.3f}",
                            f"{q['recall']:.3f}", f"{q['f1']:.3f}", f"{q['roc_auc']:.3f}",
                            q["tp"] + q["fn"]), widths))
    print()
    print("detector's best F1 on the auto-tuning grid (0.40-0.80): " + ", ".join(
        f"{s['drift'] or 'no drift'} {s['detector_best_in_tuning_range']['f1']:.3f} at "
        f"{s['detector_best_in_tuning_range']['threshold']:.2f}" for s in result["scenarios"]))
    print()
    kinds_widths = (28, 6, 9, 9)
    calm = result["scenarios"][0]
    print("share flagged by kind of run, no drift (recall for anomalies, false-positive rate for "
          "the rest)")
    print(row(("kind", "n", "detector", "naive"), kinds_widths))
    for kind, d in calm["detector_by_kind"].items():
        print(row((kind, d["n"], f"{d['flagged']:.3f}",
                    f"{calm['naive_by_kind'][kind]['flagged']:.3f}"), kinds_widths))
    print()
    print("share of the drifted (normal) runs flagged")
    drift_widths = (28, 6, 9, 9, 9)
    print(row(("kind", "n", "detector", "frozen", "naive"), drift_widths))
    for s in result["scenarios"][1:]:
        kind = f"drift:{s['drift']}"
        if kind not in s["after_drift"]["frozen_by_kind"]:  # a small --n drew none
            print(row((kind, 0, "-", "-", "-"), drift_widths))
            continue
        frozen = s["after_drift"]["frozen_by_kind"][kind]["flagged"]
        print(row((kind, s["detector_by_kind"][kind]["n"],
                    f"{s['detector_by_kind'][kind]['flagged']:.3f}", f"{frozen:.3f}",
                    f"{s['naive_by_kind'][kind]['flagged']:.3f}"), drift_widths))
    print()


if __name__ == "__main__":
    main(__doc__ or "", evaluate, print_tables, 20000, 7, "runs")
