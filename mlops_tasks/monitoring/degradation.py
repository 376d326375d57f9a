"""Degradation and drift detection: the scheduled job's adapter over monitoring/detectors.py.

Each production version has a :class:`DegradationDetector` and a :class:`DriftDetector` whose
state lives in Redis (``keys.detector_state``). A check reads the whole minutes of labeled
outcomes and score histograms since the previous check, feeds them to both detectors as one
interval, stores their state and raises or resolves the alerts. The detectors' docstring
explains the false-alarm budget, the windows, the margin and the growing baseline.

The baseline starts as the first ``MLOPS_BASELINE_SIZE`` labeled predictions after
deployment (whole buckets, stored once), or one an operator sets (`mlops set-baseline`); a new
baseline restarts the detectors from it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from .. import keys
from ..alerts.model import Alert
from ..binning import SCORE_BINS, SCORE_RESOLUTION, score_bins
from ..durations import format_duration, parse_duration
from ..errors import NotFoundError, ValidationError
from ..metrics import CONFUSION, confusion_from_arrays, confusion_metrics
from ..services import Services
from ..stats import bootstrap_drop, fisher_drop
from ..timebuckets import MINUTE, Granularity, bucket_range, covering
from ..timefmt import iso
from ..windows import COUNT_WINDOWS
from .detectors import (
    DegradationDetector,
    DegradationObservation,
    DetectorSettings,
    DriftDetector,
    DriftObservation,
)
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
DRIFT_BINS = 50  # the drift detector's histogram: 50 bins of 0.02
DRIFT_BIN_WIDTH = SCORE_RESOLUTION // DRIFT_BINS
TEST = "score z, Agresti-Caffo adjusted"
BASELINE_WINDOWS = (*COUNT_WINDOWS, "since_deployment", "last_hour")


def degradation_message(display_name: str, result: DegradationCheck, e: DropEvidence) -> str:
    """As the original system began it (WAF Behavioral Performance Degraded
    (degradation_percent: 8.5%)), then the evidence an operator judges it by."""
    interval = ""
    if e.drop_ci95:
        interval = f", 95% CI {e.drop_ci95[0]:.1f} to {e.drop_ci95[1]:.1f}%"
    window = format_duration(result.window_s).replace("m", " min").replace("h", " h")
    return (f"{display_name} Performance Degraded (degradation_percent: "
            f"{e.degradation_percent:.1f}%){interval}; p = {e.p_value:.2g} < {e.alpha:.2g}; "
            f"{result.current.labeled} labeled in the last {window} against "
            f"{result.baseline.labeled} in the baseline")


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
    labeled = 0
    for i in range(0, len(starts), 60):
        chunk = starts[i:i + 60]
        for j, bucket in enumerate(svc.windows.buckets(t.name, t.version, g, chunk)):
            labeled += sum(int(bucket.get(k, 0)) for k in CONFUSION)
            if labeled >= size:
                return _store_baseline(svc, t, g, starts[:i + j + 1], size, now)
    return None


def _store_baseline(svc: Services, t: Target, g: Granularity, starts: list[int], size: int,
                    now: float) -> dict[str, Any] | None:
    """The baseline of these buckets, stored unless another check stored one first."""
    counts = dict.fromkeys(CONFUSION, 0)
    hist = np.zeros((5, SCORE_BINS), dtype=np.int64)
    for i in range(0, len(starts), 60):
        data = svc.windows.sum_buckets(t.name, t.version, g, starts[i:i + 60], with_hist=True)
        for k in counts:
            counts[k] += int(data.counts.get(k, 0))
        hist += data.hist
    doc = _baseline_doc(counts, hist[4], hist[:4].sum(axis=0), source="auto",
                        window=f"first {size} labeled after deployment", granularity=g.code,
                        set_at=iso(now), set_by="degradation-job",
                        until_ts=starts[-1] + g.size_s)
    if svc.redis.set(keys.baseline(t.name, t.version), json.dumps(doc), nx=True):
        log.info("baseline captured", extra={"model": t.name, "version": t.version,
                                             "labeled": doc["labeled"],
                                             "accuracy": doc["accuracy"]})
    return get_baseline(svc, t.name, t.version)


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
    doc.update(set_at=iso(svc.clock()), until_ts=svc.clock(), set_by=actor, version=version)
    svc.redis.set(keys.baseline(name, version), json.dumps(doc))
    log.info("baseline set", extra={"model": name, "version": version, "window": window,
                                    "actor": actor, "labeled": doc["labeled"]})
    return doc


def coarse(hist: Any) -> np.ndarray:
    """A score histogram of ``SCORE_BINS`` bins as the drift detector's ``DRIFT_BINS``."""
    h = np.asarray(hist, dtype=np.int64)
    if h.size != SCORE_BINS:
        return h
    out: np.ndarray = h[:SCORE_RESOLUTION].reshape(DRIFT_BINS, DRIFT_BIN_WIDTH).sum(axis=1)
    out[-1] += h[SCORE_RESOLUTION]  # score 1.0
    return out


def _detectors(svc: Services, t: Target, base: dict[str, Any]
               ) -> tuple[DegradationDetector, DriftDetector, float]:
    """The version's detectors and the end of the last interval they saw: from Redis, or new
    from the baseline when there is no state yet or the baseline was replaced."""
    ds = DetectorSettings.from_settings(svc.settings)
    manual = base.get("source") != "auto"
    if manual:  # an operator's baseline is used as set, however small, and never grows
        ds = replace(ds, baseline_min=min(ds.baseline_min, int(base["labeled"]) or 1))
    raw = svc.redis.get(keys.detector_state(t.name, t.version))
    state = json.loads(raw) if raw else None
    if state and state.get("baseline_set_at") == base.get("set_at"):
        return (DegradationDetector.from_state(state["degradation"], ds),
                DriftDetector.from_state(state["drift"], ds), float(state["last_end"]))
    h = base["hist_all"] if sum(base["hist_all"]) else base["hist_labeled"]
    deg = DegradationDetector(base["tp"] + base["tn"], base["labeled"], ds, grow=not manual)
    drift = DriftDetector(coarse(h), replace(ds, baseline_min=min(ds.baseline_min,
                                                                  int(sum(h)) or 1)),
                          grow=not manual)
    start = MINUTE.start(svc.clock() - ds.interval_s)  # whole minutes, whatever the interval
    until = float(base.get("until_ts") or 0)
    return deg, drift, max(start, MINUTE.start(until + MINUTE.size_s - 1e-6))


def _save(svc: Services, t: Target, base: dict[str, Any], deg: DegradationDetector,
          drift: DriftDetector, last_end: float) -> None:
    state = {"baseline_set_at": base.get("set_at"), "last_end": last_end,
             "degradation": deg.to_state(), "drift": drift.to_state()}
    svc.redis.set(keys.detector_state(t.name, t.version), json.dumps(state))


def _interval(svc: Services, t: Target, last_end: float
              ) -> tuple[int, int, np.ndarray, float] | None:
    """Labeled outcomes (correct, total) and the score histogram of the whole minutes since
    ``last_end``, and the new end; None when no minute has ended since. After an outage longer
    than the minute buckets are kept, the minutes no longer kept are skipped."""
    end = MINUTE.start(svc.clock())
    start = max(MINUTE.start(last_end), end - MINUTE.keep_s + 2 * MINUTE.size_s)
    starts = list(range(start, end, MINUTE.size_s))
    if not starts:
        return None
    data = svc.windows.sum_buckets(t.name, t.version, MINUTE, starts, with_hist=True)
    c = _counts(data.counts)
    return c["tp"] + c["tn"], sum(c.values()), coarse(data.hist[4]), float(end)


def _drift_result(o: DriftObservation) -> Drift:
    if o.reason.startswith(("collecting", "no scores")):
        return Drift(drifted=False, reason=o.reason)
    return Drift(drifted=o.drifted, ks_statistic=o.ks_statistic, p_value=o.p_value,
                 alpha=o.alpha, window_checks=o.window_checks, window_scores=o.window_scores,
                 baseline_scores=o.baseline_scores)


def _result(svc: Services, t: Target, base: dict[str, Any], o: DegradationObservation,
            drift: DriftObservation) -> DegradationCheck:
    ds = DetectorSettings.from_settings(svc.settings)
    window = base["window"]
    if o.baseline_total != base["labeled"]:
        window += f", grown to {o.baseline_total}"
    check = DegradationCheck(
        name=t.name, version=t.version,
        window_s=int((o.window_checks or 1) * max(ds.interval_s, MINUTE.size_s)),  # whole minutes
        baseline=BaselineSummary(labeled=o.baseline_total, accuracy=o.baseline_accuracy,
                                 f1=base["f1"], source=base["source"], window=window),
        current=CurrentWindow(labeled=o.window_total, accuracy=o.window_accuracy, f1=None),
        drift=_drift_result(drift), status="insufficient_data", reason=o.reason)
    if not o.window_total or o.p_value is None or o.drop_percent is None:
        return check
    evidence = DropEvidence(
        degradation_percent=o.drop_percent, drop_ci95=o.drop_ci95, test=TEST,
        p_value=o.p_value, alpha=o.alpha, significant=o.p_value < o.alpha,
        window_checks=o.window_checks or 1, margin_percent=ds.margin_percent)
    return replace(check, evidence=evidence, status="degraded" if o.degraded else "ok",
                   reason=None if o.degraded else o.reason)


def _alert_values(result: DegradationCheck, e: DropEvidence) -> dict[str, Any]:
    """What a degradation alert records: the evidence an operator judges it by."""
    return {**e.to_dict(), "baseline_accuracy": result.baseline.accuracy,
            "baseline_labeled": result.baseline.labeled,
            "current_accuracy": result.current.accuracy,
            "current_labeled": result.current.labeled, "window_s": result.window_s}


def _observe(svc: Services, t: Target, base: dict[str, Any]
             ) -> tuple[DegradationObservation, DriftObservation]:
    deg, drift, last_end = _detectors(svc, t, base)
    interval = _interval(svc, t, last_end)
    if interval is None:  # checked again within the minute: judge what is there
        return deg.evaluate(), drift.evaluate()
    correct, total, hist, end = interval
    observed = deg.observe(correct, total), drift.observe(hist)
    _save(svc, t, base, deg, drift, end)
    return observed


def check(svc: Services, t: Target) -> DegradationCheck | NotChecked:
    base = capture_baseline(svc, t)
    if base is None:
        labeled = int(svc.windows.totals(t.name, t.version).get("labeled", 0))
        return NotChecked(t.name, t.version, "no_baseline",
                          f"collecting the baseline: {labeled} labeled predictions, "
                          f"{svc.settings.baseline_size} needed after deployment")
    o, d = _observe(svc, t, base)
    result = _result(svc, t, base, o, d)
    evidence = result.evidence
    if result.status == "degraded" and evidence is not None:
        msg = degradation_message(t.display_name, result, evidence)
        decision = svc.alerts.raise_alert(Alert(t.name, t.version, KIND, t.config["severity"],
                                                msg, _alert_values(result, evidence)))
        result = replace(result, alert=AlertRaised(decision.alert.id, decision.notify))
    elif result.status == "ok":
        svc.alerts.clear(t.name, t.version, KIND)
    drift = result.drift
    if drift.drifted:
        msg = (f"{t.display_name} Score Distribution Shifted "
               f"(ks_distance: {drift.ks_statistic:.3f})")
        svc.alerts.raise_alert(Alert(t.name, t.version, DRIFT_KIND, "warning", msg,
                                     drift.to_dict()))
    elif drift.compared:
        svc.alerts.clear(t.name, t.version, DRIFT_KIND)
    return result


def run_degradation(svc: Services, model: str | None = None) -> DegradationResult:
    results = check_each(svc, model, "degradation", lambda t: check(svc, t),
                         keys.degradation_status, log, "degradation check failed",
                         (KIND, DRIFT_KIND))
    result = DegradationResult(ran_at=iso(svc.clock()), models=results)
    log.info("Degradation detection executed successfully",
             extra={"models": len(results), "degraded": result.degraded})
    return result


def verify(svc: Services, name: str, reps: int = 20000) -> DegradationVerdict:
    """The detector's current verdict (no new interval) re-checked with Fisher's exact test
    and a bootstrap interval on the window with the strongest evidence: real, or a false
    alarm?"""
    t = target(svc.registry, name)
    base = capture_baseline(svc, t) or get_baseline(svc, t.name, t.version)
    if base is None:
        raise NotFoundError(f"{name} {t.version} has no baseline yet (see `mlops set-baseline`)")
    deg, drift, _ = _detectors(svc, t, base)
    o = deg.evaluate()
    result = _result(svc, t, base, o, drift.evaluate())
    if result.evidence is None:  # nothing to compare: the check says why
        return DegradationVerdict(result, "insufficient data", result.reason or "")
    x1, n1 = o.baseline_correct, o.baseline_total
    x2, n2 = o.window_correct, o.window_total
    exact = fisher_drop(x1, n1, x2, n2)
    lo, hi = bootstrap_drop(x1, n1, x2, n2, reps=reps)
    confirmed = o.degraded and exact.p_value < o.alpha and lo > 0
    if confirmed:
        explanation = (
            f"accuracy fell from {x1 / n1:.2%} to {x2 / n2:.2%} "
            f"({result.evidence.degradation_percent:.1f}%) over the last "
            f"{o.window_checks} check(s), Fisher exact p = {exact.p_value:.3g} < "
            f"{o.alpha:.2g}, and the 95% bootstrap interval of the drop "
            f"[{lo:.3f}, {hi:.3f}] excludes zero")
    else:
        why = (o.reason if not o.degraded else
               f"Fisher exact p = {exact.p_value:.3g} is not below {o.alpha:.2g}"
               if exact.p_value >= o.alpha else
               f"the 95% bootstrap interval of the drop [{lo:.3f}, {hi:.3f}] includes zero")
        explanation = f"not a real degradation: {why}"
    return DegradationVerdict(result, "confirmed degradation" if confirmed else "false alarm",
                              explanation, bootstrap_drop_ci95=(lo, hi))
