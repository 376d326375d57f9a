"""The three reference detectors against their naive baselines, in one table.

Runs ``evaluate(n, seed)`` of ``nplusone.py``, ``waf.py`` and ``queue_anomaly.py`` (each also a
script of its own, with per-kind tables) and prints, per model and scenario (no drift, then
each drift kind), precision, recall, F1 and ROC AUC of the detector at its default threshold
and of the naive baseline:

    .venv/bin/python bench/detectors/report.py [--scale 1.0] [--seed S]

``--scale`` multiplies each benchmark's default size (3,000 requests, 2,000 sessions, 20,000 job
runs). Progress goes to stderr; the last stdout line is one JSON document with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import nplusone
import queue_anomaly
import waf

BENCHES = ((nplusone, 3000, 7), (waf, 2000, 0), (queue_anomaly, 20_000, 7))
FIGURES = ("precision", "recall", "f1", "roc_auc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every benchmark's default size")
    parser.add_argument("--seed", type=int, help="one seed for all (default: each one's own)")
    args = parser.parse_args()
    if args.scale <= 0:
        parser.error("--scale: expected a positive number")
    started = time.monotonic()
    results = []
    for module, n, seed in BENCHES:
        size = max(100, round(n * args.scale))
        chosen = seed if args.seed is None else args.seed
        print(f"[{time.strftime('%H:%M:%S')}] {module.__name__}: n={size}, seed={chosen}",
              file=sys.stderr, flush=True)
        results.append(module.evaluate(size, chosen))
    header = ["model", "scenario", "n", "positives",
              *(f"{f} det/naive" for f in FIGURES)]
    rows = []
    for result in results:
        for s in result["scenarios"]:
            det, naive = s["detector"], s["naive"]
            rows.append([result["model"], s["drift"] or "no drift", s["n"], s["positives"],
                         *(f"{det[f]:.3f} / {naive[f]:.3f}" for f in FIGURES)])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    doc: dict[str, Any] = {"benchmark": "detectors/report", "results": results,
                           "run_time_s": round(time.monotonic() - started, 1)}
    print(f"\nrun time {doc['run_time_s']:.0f} s")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
