"""Significance tests: pure functions, checked against known values and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from mlops_tasks.stats import (
    bootstrap_drop,
    drop_test,
    ks_from_histograms,
    psi,
    wilson_interval,
)


def test_a_drop_on_a_hundred_samples_is_noise_and_on_twenty_thousand_is_real() -> None:
    """85% on 1,000 baseline samples against 80% now: p = 0.09 on 100, tiny on 20,000."""
    small = drop_test(850, 1000, 80, 100)
    assert small.method == "z-test"
    assert small.p_value == pytest.approx(0.0936, abs=0.001)
    large = drop_test(850, 1000, 16000, 20000)
    assert large.p_value < 1e-4


def test_small_cells_use_fishers_exact_test() -> None:
    result = drop_test(19, 20, 7, 10)
    assert result.method == "fisher-exact"
    expected = sps.fisher_exact([[19, 1], [7, 3]], alternative="greater").pvalue
    assert result.p_value == pytest.approx(expected)
    assert drop_test(850, 1000, 80, 100, exact=True).method == "fisher-exact"


def test_no_drop_is_not_significant() -> None:
    assert drop_test(800, 1000, 850, 1000).p_value > 0.5


def test_wilson_interval_brackets_the_proportion() -> None:
    low, high = wilson_interval(80, 100)
    assert low < 0.8 < high
    assert (low, high) == pytest.approx((0.7112, 0.8666), abs=1e-3)
    assert wilson_interval(0, 0) is None


def test_bootstrap_interval_of_the_drop() -> None:
    lo, hi = bootstrap_drop(850, 1000, 80, 100)
    assert lo < 0 < hi  # the small sample cannot exclude "no drop"
    lo, hi = bootstrap_drop(850, 1000, 16000, 20000)
    assert 0 < lo < 0.05 < hi


def test_ks_on_histograms_matches_scipy_on_binned_samples() -> None:
    rng = np.random.default_rng(0)
    a = np.floor(rng.beta(2, 5, 3000) * 100).astype(int)
    b = np.floor(rng.beta(2.6, 5, 2000) * 100).astype(int)
    d, p = ks_from_histograms(np.bincount(a, minlength=100), np.bincount(b, minlength=100))
    expected = sps.ks_2samp(a, b)
    assert d == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue, rel=0.3, abs=1e-6)


def test_psi_is_zero_for_equal_distributions_and_grows_with_shift() -> None:
    h = np.ones(1001)
    assert psi(h, h * 3) == pytest.approx(0.0)
    shifted = np.concatenate([np.zeros(300), np.ones(701)])
    assert psi(h, shifted) > 0.2
