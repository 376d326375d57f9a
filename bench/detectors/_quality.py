"""What the detector benchmarks share: progress lines, table rows, the quality of a scorer,
and the command line (``--n``, ``--seed``; tables, then one JSON line)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata


def log(msg: str) -> None:
    """Progress goes to stderr; stdout holds the tables and the JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The Mann-Whitney form: the probability that a random positive outscores a random
    negative, ties counting one half."""
    pos = int(labels.sum())
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def quality(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Precision, recall, F1 and accuracy at ``threshold``, and the ROC AUC."""
    predicted = scores >= threshold
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    fn = int((~predicted & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": threshold, "precision": round(precision, 4),
            "recall": round(recall, 4), "f1": round(f1, 4),
            "roc_auc": round(roc_auc(labels, scores), 4),
            "accuracy": round(float((predicted == labels).mean()), 4),
            "tp": tp, "fp": fp, "fn": fn}


def row(cells: Sequence[Any], widths: Sequence[int]) -> str:
    """One line of a table whose columns are ``widths`` wide."""
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def main(doc: str, evaluate: Callable[[int, int], dict[str, Any]],
         print_tables: Callable[[dict[str, Any]], None], n: int, seed: int, what: str,
         argv: Sequence[str] | None = None) -> None:
    """A detector benchmark's command line: evaluate, print the tables, then the JSON line."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--n", type=int, default=n, help=f"{what} per scenario")
    parser.add_argument("--seed", type=int, default=seed)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = evaluate(args.n, args.seed)
    log(f"done in {time.perf_counter() - started:.1f} s")
    print_tables(result)
    print(json.dumps(result, separators=(",", ":")))
