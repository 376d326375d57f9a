"""Quantizers shared by ingest and readers: score bins, latency and delay codes.

Scores live in [0, 1]. They are counted in ``SCORE_BINS`` bins of width 0.001 (bin 1000 holds
exactly 1.0), so for any threshold t that is a multiple of 0.001, "score >= t" is exactly
"bin >= round(t * 1000)". Tuning grids are validated to lie on that lattice.

Latencies and label delays are positive quantities spanning many decades; they are kept as
log-scale codes: fine codes (1 % steps) in per-prediction records, coarse bins (10 % steps) in
the aggregate histograms, whose size is therefore fixed whatever the traffic.
"""

from __future__ import annotations

import math

import numpy as np

SCORE_RESOLUTION = 1000
SCORE_BINS = SCORE_RESOLUTION + 1
_EPS = 1e-9

# Fine codes: 1 % steps from 1 microsecond, in a uint16 (0 means "absent").
_FINE_BASE = 0.001
_FINE_LOG_STEP = math.log(1.01)
FINE_MAX = 65535

# Coarse bins: 10 % steps from 10 microseconds (or 10 ms of delay), 1..255 (0 means "absent").
_COARSE_LOG_STEP = math.log(1.1)
COARSE_BINS = 256


def score_bins(scores: np.ndarray) -> np.ndarray:
    """Bin index of each score in [0, 1]."""
    return np.floor(np.asarray(scores, dtype=np.float64) * SCORE_RESOLUTION + _EPS).astype(
        np.int64).clip(0, SCORE_RESOLUTION)


def threshold_bin(threshold: float) -> int:
    """The first bin whose scores are >= threshold (threshold on the 0.001 lattice)."""
    return round(threshold * SCORE_RESOLUTION)


def on_lattice(value: float) -> bool:
    return abs(value * SCORE_RESOLUTION - round(value * SCORE_RESOLUTION)) < 1e-6


def fine_code(values: np.ndarray) -> np.ndarray:
    """uint16 code of positive values (NaN -> 0), 1 % resolution."""
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros(v.shape, dtype=np.int64)
    ok = np.isfinite(v)
    clipped = np.maximum(v[ok], _FINE_BASE)
    out[ok] = np.minimum(1 + np.rint(np.log(clipped / _FINE_BASE) / _FINE_LOG_STEP), FINE_MAX)
    return out


def fine_decode(codes: np.ndarray) -> np.ndarray:
    c = np.asarray(codes, dtype=np.float64)
    out = _FINE_BASE * np.exp((c - 1) * _FINE_LOG_STEP)
    return np.where(c > 0, out, np.nan)


def coarse_bin(values: np.ndarray, base: float) -> np.ndarray:
    """Histogram bin (1..255) of positive values from ``base`` upwards, 10 % wide; NaN -> 0."""
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros(v.shape, dtype=np.int64)
    ok = np.isfinite(v)
    clipped = np.maximum(v[ok], base)
    out[ok] = np.minimum(1 + np.ceil(np.log(clipped / base) / _COARSE_LOG_STEP - 1e-9),
                         COARSE_BINS - 1)
    return out


def coarse_value(bins: np.ndarray, base: float) -> np.ndarray:
    """Geometric middle of each coarse bin (bin 1 holds everything <= base)."""
    b = np.asarray(bins, dtype=np.float64)
    upper = base * np.exp((b - 1) * _COARSE_LOG_STEP)
    return np.where(b <= 1, base, upper / math.sqrt(1.1))


LATENCY_BASE_MS = 0.01
DELAY_BASE_S = 0.01
