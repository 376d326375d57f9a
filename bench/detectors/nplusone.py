"""n1-detector against the naive baseline on generated, labeled request query logs.

The logs are the SQL a real ORM emits (mlops_tasks/simulator/nplusone.py: SQLAlchemy 2 lazy and
eager loading on SQLite, benign look-alikes, literals inline or as an echo log). The detector is
NPlusOneDetector with the shipped settings and no client (its default decision threshold,
NPLUSONE_ML_CONFIDENCE_THRESHOLD=60 -> 0.60); the baseline is template counting
(``naive_score``: the most repeated statement, literals stripped, ``1 - 1/count``), judged at the
same 0.60 (3 repeats or more). Each scenario (no drift, then each drift kind) is generated from
the same seed. The detector's F1 and accuracy over n1-detector's auto-tuning range (0.5-0.9)
show what a tuned threshold can win back under a drift.

    .venv/bin/python bench/detectors/nplusone.py [--n 3000] [--seed 7]

Progress goes to stderr; stdout gets the tables and, as its last line, one JSON document
(``evaluate(n, seed)``'s result).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from _quality import log, main, quality

from mlops_tasks.detectors.nplusone import NPlusOneDetector
from mlops_tasks.settings import Settings
from mlops_tasks.simulator.nplusone import DRIFTS, generate, naive_score

THRESHOLD = 0.6  # the detector's shipped default, and the baseline's 3 repeats
TUNING_GRID = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))  # n1-detector's tuning range


def by_kind(kinds: Sequence[str], labels: np.ndarray,
            scores: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per kind of request: how many, how many are N+1s, and the share flagged."""
    out: dict[str, dict[str, Any]] = {}
    arr = np.array(kinds)
    for kind in sorted(set(kinds)):
        mask = arr == kind
        out[kind] = {"n": int(mask.sum()), "positives": int(labels[mask].sum()),
                     "flagged": round(float((scores[mask] >= THRESHOLD).mean()), 4)}
    return out


def scenario(n: int, seed: int, drift: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    requests = generate(np.random.default_rng(seed), n, drift=drift)
    generated_s = time.perf_counter() - started
    labels = np.array([r.label for r in requests])
    kinds = [r.kind for r in requests]
    detector = NPlusOneDetector(settings=Settings.from_env({}))
    assert detector.decision_threshold == THRESHOLD  # noqa: S101 - the table's premise
    started = time.perf_counter()
    analyses = [detector.analyze(r.input) for r in requests]
    per_request_us = (time.perf_counter() - started) / n * 1e6
    ours = np.array([a.score for a in analyses])
    naive = np.array([naive_score(r.input) for r in requests])
    return {
        "drift": drift, "n": n, "positives": int(labels.sum()),
        "detector": quality(labels, ours, THRESHOLD), "naive": quality(labels, naive, THRESHOLD),
        "detector_by_threshold": {str(t): {k: v for k, v in quality(labels, ours, t).items()
                                           if k in ("f1", "accuracy")}
                                  for t in TUNING_GRID},
        "detector_by_kind": by_kind(kinds, labels, ours),
        "naive_by_kind": by_kind(kinds, labels, naive),
        "detector_us_per_request": round(per_request_us, 1),
        "truncated": sum(a.truncated for a in analyses),
        "generate_s": round(generated_s, 2)}


def evaluate(n: int = 3000, seed: int = 7) -> dict[str, Any]:
    """Every scenario's figures (the JSON document the script prints last)."""
    scenarios = []
    for drift in (None, *DRIFTS):
        log(f"scenario {drift or 'no drift'}: {n} requests, seed {seed}")
        scenarios.append(scenario(n, seed, drift))
    return {"model": "n1-detector", "threshold": THRESHOLD, "seed": seed, "n": n,
            "scenarios": scenarios}


def print_tables(result: dict[str, Any]) -> None:
    print(f"n1-detector vs naive template counting, {result['n']} requests per scenario, "
          f"seed {result['seed']}, threshold {result['threshold']}")
    print()
    print("| scenario | N+1s | model | precision | recall | F1 | ROC AUC | accuracy |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for s in result["scenarios"]:
        for name in ("detector", "naive"):
            q = s[name]
            print(f"| {s['drift'] or 'no drift'} | {s['positives']} | {name} | "
                  f"{q['precision']:.3f} | {q['recall']:.3f} | {q['f1']:.3f} | "
                  f"{q['roc_auc']:.3f} | {q['accuracy']:.3f} |")
    print()
    print("Detector F1 and accuracy over n1-detector's auto-tuning range (0.5-0.9):")
    print()
    print("| scenario | figure | " + " | ".join(map(str, TUNING_GRID)) + " |")
    print("| --- | --- |" + " ---: |" * len(TUNING_GRID))
    for s in result["scenarios"]:
        by = s["detector_by_threshold"]
        for figure in ("f1", "accuracy"):
            print(f"| {s['drift'] or 'no drift'} | {figure} | "
                  + " | ".join(f"{by[str(t)][figure]:.3f}" for t in TUNING_GRID) + " |")
    print()
    print("Share flagged per kind of request (no drift; label True = N+1):")
    print()
    base = result["scenarios"][0]
    print("| kind | n | N+1s | detector | naive |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, row in base["detector_by_kind"].items():
        naive = base["naive_by_kind"][kind]["flagged"]
        print(f"| {kind} | {row['n']} | {row['positives']} | {row['flagged']:.2f} | "
              f"{naive:.2f} |")
    for s in result["scenarios"][1:]:
        print()
        print(f"Under {s['drift']}, the kinds it adds:")
        print()
        print("| kind | n | N+1s | detector | naive |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for kind, row in s["detector_by_kind"].items():
            if kind not in base["detector_by_kind"]:
                naive = s["naive_by_kind"][kind]["flagged"]
                print(f"| {kind} | {row['n']} | {row['positives']} | {row['flagged']:.2f} | "
                      f"{naive:.2f} |")
    print()
    print("Detector time per request (µs): " + ", ".join(
        f"{s['drift'] or 'no drift'} {s['detector_us_per_request']}"
        for s in result["scenarios"]) + "; logs cut by the time budget: "
        + str(sum(s["truncated"] for s in result["scenarios"])))


if __name__ == "__main__":
    main(__doc__ or "", evaluate, print_tables, 3000, 7, "requests")
