"""waf-behavioral against the naive baseline on generated, labeled client sessions.

The detector is WafBehavioralDetector with the shipped settings and no client, deciding at its
default threshold (MLOPS_WAF_ANOMALY_THRESHOLD, 0.70); the baseline is
``mlops_tasks.simulator.waf.naive_score`` (the session's 4xx/5xx rate plus 0.5 when any request
holds a keyword such as ``select``, ``<script`` or ``../`` after one URL-decoding), flagging at
0.5. Each scenario (no drift, then each drift kind) draws ``n`` sessions from the same seed.
Besides the figures at the default thresholds, the detector's best F1 over the auto-tuning range
of the catalogue (0.50-0.90, step 0.05) shows what tuning can win back after a drift. The
simulator and the detector were written together: the figures measure the detector against the
simulator's model of traffic, not against field traffic.

    .venv/bin/python bench/detectors/waf.py [--n 2000] [--seed 0]

Progress goes to stderr; stdout gets the tables and, as its last line, one JSON document
(``evaluate(n, seed)``'s result).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from _quality import log, main, quality, row

from mlops_tasks.detectors.waf import WafBehavioralDetector
from mlops_tasks.settings import Settings
from mlops_tasks.simulator.waf import DRIFTS, generate, naive_score

NAIVE_THRESHOLD = 0.5
TUNING_RANGE = np.round(np.arange(0.5, 0.9001, 0.05), 2)  # the catalogue's tuning grid


def best_in_tuning_range(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """The threshold of the tuning grid with the best F1 (the lowest on a tie), and its F1."""
    results = [quality(labels, scores, float(t)) for t in TUNING_RANGE]
    best = max(results, key=lambda q: (q["f1"], -q["threshold"]))
    return {"threshold": best["threshold"], "f1": best["f1"], "precision": best["precision"],
            "recall": best["recall"]}


def by_kind(kinds: Sequence[str], labels: np.ndarray, scores: np.ndarray,
            threshold: float) -> dict[str, dict[str, Any]]:
    """Per kind of session: how many, its label, and the share flagged (recall for attacks,
    the false positive rate for honest kinds)."""
    out: dict[str, dict[str, Any]] = {}
    arr = np.array(kinds)
    for kind in sorted(set(kinds)):
        mask = arr == kind
        out[kind] = {"n": int(mask.sum()), "malicious": bool(labels[mask][0]),
                     "flagged": round(float((scores[mask] >= threshold).mean()), 4)}
    return out


def scenario(n: int, seed: int, drift: str | None) -> dict[str, Any]:
    sessions = generate(np.random.default_rng(seed), n, drift=drift)
    labels = np.array([s.label for s in sessions])
    kinds = [s.kind for s in sessions]
    detector = WafBehavioralDetector(settings=Settings.from_env({}), pseudonym_key=b"bench")
    threshold = detector.decision_threshold
    started = time.perf_counter()
    ours = np.array([detector.score_session(s.input) for s in sessions])
    elapsed = time.perf_counter() - started
    naive = np.array([naive_score(s.input) for s in sessions])
    requests = sum(len(s.input) for s in sessions)
    lookalike = np.array([k.startswith("lookalike:") for k in kinds])
    return {
        "drift": drift, "n": n, "positives": int(labels.sum()), "requests": requests,
        "detector": quality(labels, ours, threshold),
        "naive": quality(labels, naive, NAIVE_THRESHOLD),
        "detector_best_in_tuning_range": best_in_tuning_range(labels, ours),
        "lookalike_flagged": {
            "n": int(lookalike.sum()),
            "detector": round(float((ours[lookalike] >= threshold).mean()), 4),
            "naive": round(float((naive[lookalike] >= NAIVE_THRESHOLD).mean()), 4)},
        "detector_by_kind": by_kind(kinds, labels, ours, threshold),
        "naive_by_kind": by_kind(kinds, labels, naive, NAIVE_THRESHOLD),
        "detector_us_per_request": round(elapsed / max(requests, 1) * 1e6, 1),
    }


def evaluate(n: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The figures of every scenario: precision, recall, F1 and ROC AUC of the detector (at
    its default threshold) and of the naive baseline (at 0.5), the look-alikes flagged, the
    share flagged of each kind of session, and the detector's best F1 in the tuning range."""
    scenarios = []
    for drift in (None, *DRIFTS):
        log(f"scenario {drift or 'no drift'}: {n} sessions, seed {seed}")
        scenarios.append(scenario(n, seed, drift))
    return {"benchmark": "detectors/waf", "model": "waf-behavioral", "n": n, "seed": seed,
            "naive_threshold": NAIVE_THRESHOLD, "scenarios": scenarios}



def print_tables(result: dict[str, Any]) -> None:
    widths = (17, 9, 5, 6, 6, 6, 6, 10, 14)
    print(f"waf-behavioral vs naive (error rate + keywords): {result['n']} sessions per "
          f"scenario, seed {result['seed']}")
    print(row(("scenario", "scorer", "thr", "prec", "recall", "F1", "AUC", "lookalike",
                "best F1 (thr)"), widths))
    for s in result["scenarios"]:
        for who in ("detector", "naive"):
            q = s[who]
            best = s["detector_best_in_tuning_range"]
            tuned = f"{best['f1']:.3f} ({best['threshold']:.2f})" if who == "detector" else ""
            print(row((s["drift"] or "no drift", who, f"{q['threshold']:.2f}",
                        f"{q['precision']:.3f}", f"{q['recall']:.3f}", f"{q['f1']:.3f}",
                        f"{q['roc_auc']:.3f}", f"{s['lookalike_flagged'][who]:.3f}", tuned),
                       widths))
    print()
    print("share flagged per kind of session (recall for attacks, false positives otherwise)")
    kinds = sorted({k for s in result["scenarios"] for k in s["detector_by_kind"]})
    header = ["kind", "truth"]
    for s in result["scenarios"]:
        header += [f"{(s['drift'] or 'no drift')[:11]}:det", "naive"]
    kind_widths = (32, 6, *([15, 6] * len(result["scenarios"])))
    print(row(header, kind_widths))
    for kind in kinds:
        cells: list[Any] = [kind, ""]
        for s in result["scenarios"]:
            det, naive = s["detector_by_kind"].get(kind), s["naive_by_kind"].get(kind)
            if det is not None and naive is not None:
                cells[1] = "attack" if det["malicious"] else "benign"
                cells += [f"{det['flagged']:.2f} ({det['n']})", f"{naive['flagged']:.2f}"]
            else:
                cells += ["-", "-"]
        print(row(cells, kind_widths))


if __name__ == "__main__":
    main(__doc__ or "", evaluate, print_tables, 2000, 0, "sessions")
