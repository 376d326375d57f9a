"""Synthetic detector traffic for the demo and the benchmarks: scores whose labels follow a
known calibration, so the metrics that come out are predictable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Traffic:
    scores: np.ndarray
    actual: np.ndarray  # bool ground truth
    latency_ms: np.ndarray


def detector_traffic(n: int, *, positive_rate: float = 0.3, separation: float = 2.5,
                     latency_ms: float = 5.0, seed: int = 0) -> Traffic:
    """Scores of a detector whose positives and negatives are ``separation`` standard
    deviations apart (on the logit scale); latencies are log-normal around ``latency_ms``."""
    rng = np.random.default_rng(seed)
    actual = rng.random(n) < positive_rate
    logits = rng.normal(np.where(actual, separation / 2, -separation / 2), 1.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    latency = rng.lognormal(np.log(latency_ms), 0.4, n)
    return Traffic(scores=scores, actual=actual, latency_ms=latency)
