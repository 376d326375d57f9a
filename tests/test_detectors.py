"""The calibrated detectors as pure objects: no Redis, no clock."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlops_tasks.monitoring.detectors import (
    DegradationDetector,
    DetectorSettings,
    DriftDetector,
    drop_p,
)


def stream(rng: np.random.Generator, checks: int, per_check: float,
           accuracy: float) -> list[tuple[int, int]]:
    n = rng.poisson(per_check, checks)
    return list(zip(rng.binomial(n, accuracy).tolist(), n.tolist(), strict=True))


def test_the_issue_example() -> None:
    d = DegradationDetector(baseline_correct=1712, baseline_total=2000)
    r = d.observe(correct=688, total=750)
    assert r.degraded is False and r.p_value is not None and r.p_value > 0.5
    assert r.drop_percent == pytest.approx((1 - (688 / 750) / (1712 / 2000)) * 100)
    low, high = r.drop_ci95 or (0, 0)
    assert low < r.drop_percent < high
    assert "no drop beyond 0.5% shown" in r.reason


def test_the_level_comes_from_the_budget() -> None:
    s = DetectorSettings()
    assert s.checks_per_month == 2880 and s.alpha == pytest.approx(1 / (2880 * 4))
    assert DetectorSettings(false_alarms_per_month=2, interval_s=300).alpha == \
        pytest.approx(2 / (8640 * 4))


def test_one_hundred_is_not_enough_and_twenty_thousand_is() -> None:
    """85 % -> 80 % against a 1,000-outcome baseline."""
    few = DegradationDetector(850, 1000).observe(80, 100)
    many = DegradationDetector(850, 1000).observe(16000, 20000)
    assert not few.degraded and many.degraded and many.started
    assert many.p_value is not None and many.p_value < many.alpha < 1e-4


def test_the_margin_is_in_the_hypothesis() -> None:
    """The same data, judged against a larger margin, give a larger p-value."""
    assert drop_p(850, 1000, 16000, 20000, 0.0) < drop_p(850, 1000, 16000, 20000, 0.01)
    assert float(drop_p(850, 1000, 0, 0, 0.0)) == 1.0  # an empty window never rejects


def test_a_drop_spread_over_checks_is_caught_by_a_longer_window() -> None:
    d = DegradationDetector(42500, 50000)
    results = [d.observe(1230, 1500) for _ in range(8)]  # 82 % against 85 %
    assert not results[0].degraded
    first = next(r for r in results if r.degraded)
    assert first.started and first.window_checks is not None and first.window_checks > 1


def test_hysteresis_keeps_the_alert_until_no_window_shows_a_drop() -> None:
    s = DetectorSettings(windows=(1, 4))
    d = DegradationDetector(42500, 50000, s)
    assert d.observe(16000, 20000).started
    still = d.observe(2040, 2400)  # 85 %, but the 4-interval window still holds the drop
    assert still.degraded and not still.started and "still degraded" in still.reason
    for _ in range(3):
        last = d.observe(2040, 2400)
    assert not last.degraded  # the drop has left every window


def test_the_baseline_is_collected_then_grows_while_healthy_up_to_the_maximum() -> None:
    s = DetectorSettings(windows=(1, 2), baseline_min=100, baseline_max=1000)
    d = DegradationDetector(settings=s)
    assert "collecting the baseline" in d.observe(85, 100).reason
    assert d.baseline_total == 100
    for _ in range(2):
        d.observe(340, 400)
    assert d.baseline_total == 100  # both intervals are still in the windows
    d.observe(340, 400)
    assert d.baseline_total == 500  # the oldest left the longest window
    for _ in range(5):
        d.observe(340, 400)
    assert d.baseline_total == 1300  # the interval that crossed 1,000 was added whole
    frozen = DegradationDetector(850, 1000, s, grow=False)
    for _ in range(5):
        frozen.observe(340, 400)
    assert frozen.baseline_total == 1000


def test_no_growth_while_degraded() -> None:
    s = DetectorSettings(windows=(1,), baseline_min=100, baseline_max=100000)
    d = DegradationDetector(8500, 10000, s)
    assert d.observe(7000, 10000).degraded
    d.observe(7000, 10000)  # evicts the first degraded interval
    assert d.baseline_total == 10000


def test_state_round_trips_through_json_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    checks = stream(rng, 200, 250, 0.85)
    a = DegradationDetector()
    first = [a.observe(x, n) for x, n in checks[:120]]
    b = DegradationDetector.from_state(json.loads(json.dumps(a.to_state())), a.settings)
    rest_a = [a.observe(x, n) for x, n in checks[120:]]
    rest_b = [b.observe(x, n) for x, n in checks[120:]]
    assert rest_a == rest_b
    again = DegradationDetector()
    assert [again.observe(x, n) for x, n in checks[:120]] == first


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="correct"):
        DegradationDetector(850, 1000).observe(11, 10)
    with pytest.raises(ValueError, match="hist"):
        DriftDetector(np.ones(50, dtype=np.int64) * 40).observe(np.ones(20))


def test_stationary_traffic_stays_within_the_budget_on_average() -> None:
    """Twelve simulated months at 1,000 labeled per hour, baselines from the same process: far
    fewer than the budget's one alert per month (bench/alert_quality.py measures it on 100)."""
    rng = np.random.default_rng(7)
    alerts = 0
    for _ in range(12):
        d = DegradationDetector()
        alerts += sum(d.observe(x, n).started for x, n in stream(rng, 2880, 250, 0.85))
    assert alerts <= 6


def scores(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    positives = rng.random(n) < 0.15
    s = np.where(positives, rng.beta(8, 2, n), np.clip(rng.beta(2, 8, n) + shift, 0, 1))
    return np.histogram(s, bins=50, range=(0, 1))[0]


def test_drift_is_caught_when_one_class_moves_and_not_before() -> None:
    rng = np.random.default_rng(5)
    d = DriftDetector()
    for _ in range(8):
        assert not d.observe(scores(rng, 2500)).drifted
    moved = d.observe(scores(rng, 2500, shift=0.1))
    assert moved.drifted and moved.started
    assert moved.ks_statistic is not None and moved.ks_statistic > 0.2


def test_a_tiny_but_significant_shift_is_not_drift() -> None:
    """Below the practical distance, even huge samples are not reported."""
    base = np.full(50, 20000, dtype=np.int64)
    nudged = base.copy()
    nudged[:10] += 2000  # about 2 % more mass in the lowest scores
    d = DriftDetector(base)
    r = d.observe(nudged * 10)
    assert r.ks_statistic is not None and 0 < r.ks_statistic < 0.03 and not r.drifted
