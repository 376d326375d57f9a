"""Degradation detection: the current window against the version's baseline, with significance.

A degradation is flagged only when the relative accuracy drop is at least
``MLOPS_DEGRADATION_MIN_PERCENT`` *and* a one-sided test (two-proportion z-test, or Fisher's
exact test when a cell is small) gives p < ``MLOPS_SIGNIFICANCE_LEVEL``. Score drift is a
Kolmogorov-Smirnov test between the baseline's and the current score histograms, reported when
it is significant and the population stability index reaches ``MLOPS_DRIFT_PSI_THRESHOLD``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from .. import keys
from ..alerts.model import Alert
from ..binning import SCORE_BINS, score_bins
from ..durations import parse_duration
from ..errors import NotFoundError, ValidationError
from ..metrics import CONFUSION, confusion_from_arrays, confusion_metrics
from ..results import pair
from ..services import Services
from ..settings import Settings
from ..stats import bootstrap_drop, drop_test, ks_from_histograms, psi, wilson_interval
from ..timebuckets import MINUTE, bucket_range, covering
from ..timefmt import iso
from ..windows import COUNT_WINDOWS
from .results import (
    AlertRaised,
    BaselineSummary,
    CurrentWindow,
    DegradationCheck,
    DegradationResult,
    DegradationVerdict,
    Drift,
    DropEvidence,
    NotChecked,
)
from .targets import Target, check_each, target

log = logging.getLogger("mlops.monitoring")

KIND = "performance_degraded"
DRIFT_KIND = "data_drift"
DRIFT_MIN_SAMPLES = 100
BASELINE_WINDOWS = (*COUNT_WINDOWS, "since_deployment", "last_hour")


def degradation_message(display_name: str, percent: float) -> str:
    """As the original system wrote it: WAF Behavioral Performance Degraded
    (degradation_percent: 8.5%)."""
    return f"{display_name} Performance Degraded (degradation_percent: {percent:.1f}%)"


def _counts(c: dict[str, float]) -> dict[str, int]:
    return {k: int(c.get(k, 0)) for k in CONFUSION}


def _baseline_doc(counts: dict[str, int], hist_all: np.ndarray, hist_labeled: np.ndarray,
                  **extra: Any) -> dict[str, Any]:
    m = confusion_metrics(**counts)
    return {**extra, **counts, "labeled": m["count"], "accuracy": m["accuracy"], "f1": m["f1"],
            "hist_all": np.asarray(hist_all, dtype=np.int64).tolist(),
            "hist_labeled": np.asarray(hist_labeled, dtype=np.int64).tolist()}


def get_baseline(svc: Services, name: str, version: str) -> dict[str, Any] | None:
    raw = svc.redis.get(keys.baseline(name, version))
    return json.loads(raw) if raw else None


def capture_baseline(svc: Services, t: Target) -> dict[str, Any] | None:
    """The first ``MLOPS_BASELINE_SIZE`` labeled predictions after deployment (whole buckets,
    from the finest granularity still kept), stored once; None while too few have arrived."""
    existing = get_baseline(svc, t.name, t.version)
    if existing is not None:
        return existing
    if t.deployed_ts is None:
        return None
    size = svc.settings.baseline_size
    now = svc.clock()
    g = covering(max(now - t.deployed_ts, MINUTE.size_s), svc.settings.retention_days)
    starts = bucket_range(now, now - t.deployed_ts + 1, g)
    counts = dict.fromkeys(CONFUSION, 0)
    hist = np.zeros((5, SCORE_BINS), dtype=np.int64)
    for i in range(0, len(starts), 60):
        data = svc.windows.sum_buckets(t.name, t.version, g, starts[i:i + 60], with_hist=True)
        for k in counts:
            counts[k] += int(data.counts.get(k, 0))
        hist += data.hist
        if sum(counts.values()) >= size:
            doc = _baseline_doc(counts, hist[4], hist[:4].sum(axis=0), source="auto",
                                window=f"first {size} labeled after deployment",
                                granularity=g.code, set_at=iso(now), set_by="degradation-job")
            if svc.redis.set(keys.baseline(t.name, t.version), json.dumps(doc), nx=True):
                log.info("baseline captured", extra={"model": t.name, "version": t.version,
                                                     "labeled": doc["labeled"],
                                                     "accuracy": doc["accuracy"]})
            return get_baseline(svc, t.name, t.version)
    return None


def set_baseline(svc: Services, name: str, window: str, actor: str,
                 version: str | None = None) -> dict[str, Any]:
    """Set a version's baseline from a window: last_100, last_1000, since_deployment,
    last_hour, or a duration such as 24h."""
    t = target(svc.registry, name)
    version = version or t.version
    reader = svc.windows
    if window in COUNT_WINDOWS:
        ring = reader.recent(name, version, COUNT_WINDOWS[window])
        counts = dict(zip(CONFUSION, confusion_from_arrays(ring["actual"], ring["predicted"]),
                          strict=True))
        hist = np.bincount(score_bins(ring["score"]), minlength=SCORE_BINS)
        doc = _baseline_doc(counts, hist, hist, source="manual", window=window)
    else:
        if window == "since_deployment":
            if t.deployed_ts is None:
                raise NotFoundError(f"{name} is not deployed to production")
            window_s = svc.clock() - t.deployed_ts
        elif window == "last_hour":
            window_s = 3600.0
        else:
            window_s = parse_duration(window, "--window")
        data = reader.time_window(name, version, window_s)
        doc = _baseline_doc(_counts(data.counts), data.hist[4], data.hist[:4].sum(axis=0),
                            source="manual", window=window)
    if doc["labeled"] == 0:
        raise ValidationError(f"--window: {window} holds no labeled predictions of "
                              f"{name} {version}")
    doc.update(set_at=iso(svc.clock()), set_by=actor, version=version)
    svc.redis.set(keys.baseline(name, version), json.dumps(doc))
    log.info("baseline set", extra={"model": name, "version": version, "window": window,
                                    "actor": actor, "labeled": doc["labeled"]})
    return doc


def _drift(s: Settings, base: dict[str, Any], current_hist: np.ndarray) -> Drift:
    """Score drift between the baseline and the current window, over every prediction's score,
    labeled or not: operators hear about changed traffic before any label arrives."""
    h_base = np.asarray(base["hist_all"]) if sum(base["hist_all"]) else \
        np.asarray(base["hist_labeled"])
    if h_base.sum() < DRIFT_MIN_SAMPLES or current_hist.sum() < DRIFT_MIN_SAMPLES:
        return Drift(drifted=False, reason="too few scores to compare")
    d, p = ks_from_histograms(h_base, current_hist)
    index = psi(h_base, current_hist)
    return Drift(drifted=p < s.significance_level and index >= s.drift_psi_threshold,
                 ks_statistic=d, p_value=p, psi=index)


def _evaluate(svc: Services, t: Target, base: dict[str, Any], exact: bool) -> DegradationCheck:
    s = svc.settings
    data = svc.windows.time_window(t.name, t.version, s.degradation_window_s)
    cur = confusion_metrics(**_counts(data.counts))
    check = DegradationCheck(
        name=t.name, version=t.version, window_s=s.degradation_window_s,
        baseline=BaselineSummary(labeled=base["labeled"], accuracy=base["accuracy"],
                                 f1=base["f1"], source=base["source"], window=base["window"]),
        current=CurrentWindow(labeled=cur["count"], accuracy=cur["accuracy"], f1=cur["f1"]),
        drift=_drift(s, base, data.hist[4]), status="insufficient_data",
        reason="no labeled predictions in the current window")
    if cur["count"] == 0 or base["accuracy"] in (None, 0):
        return check
    x1, n1 = base["tp"] + base["tn"], base["labeled"]
    x2, n2 = cur["tp"] + cur["tn"], cur["count"]
    drop = (base["accuracy"] - cur["accuracy"]) / base["accuracy"] * 100
    f1_drop = None
    if base["f1"] and cur["f1"] is not None:
        f1_drop = (base["f1"] - cur["f1"]) / base["f1"] * 100
    test = drop_test(x1, n1, x2, n2, exact=exact)
    significant = test.p_value < s.significance_level
    large = drop >= s.degradation_min_percent
    reason = None
    if not large:
        reason = f"drop {drop:.1f}% is below {s.degradation_min_percent:g}%"
    elif not significant:
        reason = f"p = {test.p_value:.3g} is not below {s.significance_level:g}"
    evidence = DropEvidence(
        degradation_percent=drop, f1_degradation_percent=f1_drop, test=test.method,
        p_value=test.p_value, significant=significant,
        current_accuracy_ci95=wilson_interval(x2, n2))
    return replace(check, evidence=evidence, reason=reason,
                   status="degraded" if (significant and large) else "ok")


def _alert_values(result: DegradationCheck, e: DropEvidence) -> dict[str, Any]:
    """What a degradation alert records."""
    return {"degradation_percent": e.degradation_percent,
            "f1_degradation_percent": e.f1_degradation_percent, "p_value": e.p_value,
            "test": e.test, "current_accuracy_ci95": pair(e.current_accuracy_ci95),
            "baseline_accuracy": result.baseline.accuracy,
            "current_accuracy": result.current.accuracy,
            "current_labeled": result.current.labeled,
            "baseline_labeled": result.baseline.labeled}


def check(svc: Services, t: Target, exact: bool = False) -> DegradationCheck | NotChecked:
    base = capture_baseline(svc, t)
    if base is None:
        labeled = int(svc.windows.totals(t.name, t.version).get("labeled", 0))
        return NotChecked(t.name, t.version, "no_baseline",
                          f"collecting the baseline: {labeled} labeled predictions, "
                          f"{svc.settings.baseline_size} needed after deployment")
    result = _evaluate(svc, t, base, exact)
    severity = t.config["severity"]
    evidence = result.evidence
    if result.status == "degraded" and evidence is not None:  # degraded: there is evidence
        msg = degradation_message(t.display_name, evidence.degradation_percent)
        decision = svc.alerts.raise_alert(Alert(t.name, t.version, KIND, severity, msg,
                                                _alert_values(result, evidence)))
        result = replace(result, alert=AlertRaised(decision.alert.id, decision.notify))
    elif result.status == "ok":
        svc.alerts.clear(t.name, t.version, KIND)
    drift = result.drift
    if drift.drifted:
        msg = f"{t.display_name} Score Distribution Shifted (psi: {drift.psi:.2f})"
        svc.alerts.raise_alert(Alert(t.name, t.version, DRIFT_KIND, "warning", msg,
                                     {"ks_statistic": drift.ks_statistic,
                                      "p_value": drift.p_value, "psi": drift.psi}))
    elif drift.compared:
        svc.alerts.clear(t.name, t.version, DRIFT_KIND)
    return result


def run_degradation(svc: Services, model: str | None = None,
                    exact: bool = False) -> DegradationResult:
    results = check_each(svc, model, "degradation", lambda t: check(svc, t, exact),
                         keys.degradation_status, log, "degradation check failed",
                         (KIND, DRIFT_KIND))
    result = DegradationResult(ran_at=iso(svc.clock()), models=results)
    log.info("Degradation detection executed successfully",
             extra={"models": len(results), "degraded": result.degraded})
    return result


def verify(svc: Services, name: str, reps: int = 20000) -> DegradationVerdict:
    """Re-check with Fisher's exact test and a bootstrap interval; say if it is a false alarm."""
    t = target(svc.registry, name)
    base = capture_baseline(svc, t) or get_baseline(svc, t.name, t.version)
    if base is None:
        raise NotFoundError(f"{name} {t.version} has no baseline yet (see `mlops set-baseline`)")
    result = _evaluate(svc, t, base, exact=True)
    if result.evidence is None:  # nothing to compare: the check says why
        return DegradationVerdict(result, "insufficient data", result.reason or "")
    x1, n1 = base["tp"] + base["tn"], base["labeled"]
    cur = result.current
    x2 = round((cur.accuracy or 0.0) * cur.labeled)  # evidence: labeled, so an accuracy
    lo, hi = bootstrap_drop(x1, n1, x2, cur.labeled, reps=reps)
    confirmed = result.status == "degraded" and lo > 0
    if confirmed:
        explanation = (
            f"accuracy fell from {base['accuracy']:.2%} to {cur.accuracy:.2%} "
            f"({result.evidence.degradation_percent:.1f}%), Fisher exact p = "
            f"{result.evidence.p_value:.3g}, and the 95% bootstrap interval of the drop "
            f"[{lo:.3f}, {hi:.3f}] excludes zero")
    else:
        why = result.reason or (
            f"the 95% bootstrap interval of the drop [{lo:.3f}, {hi:.3f}] includes zero")
        explanation = f"not a real degradation: {why}"
    return DegradationVerdict(result, "confirmed degradation" if confirmed else "false alarm",
                              explanation, bootstrap_drop_ci95=(lo, hi))
