"""The auto-tuning engine: evaluate the grid on the tuning window, decide, apply, record.

A new threshold is applied only when
    AUTO_TUNING_ENABLED is true (otherwise the run is recorded only),
    the window holds at least MLOPS_TUNING_MIN_SAMPLES labeled predictions,
    the improvement exceeds MLOPS_TUNING_MIN_IMPROVEMENT percent,
    the bootstrap interval of the improvement excludes zero (MLOPS_TUNING_REQUIRE_SIGNIFICANCE),
    and the model was not retuned within MLOPS_TUNING_COOLDOWN_S.
Applying writes a configuration revision with actor ``auto-tuner``, so ``rollback-config``
undoes it. Every run, applied or not, is kept in the tuning history with its whole grid.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np

from .. import keys
from ..locks import model_lock
from ..monitoring.targets import Target, targets
from ..registry.config import TuningSpec
from ..services import Services
from ..timefmt import iso
from . import grid as g

log = logging.getLogger("mlops.tuning")

ACTOR = "auto-tuner"
HISTORY_CAP = 5000


def _num(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def evaluate(neg: np.ndarray, pos: np.ndarray, spec: TuningSpec,
             current_threshold: float) -> dict[str, Any]:
    """Score every grid threshold and the current one (pure)."""
    params = {"beta": spec.beta, "cost_fp": spec.cost_fp, "cost_fn": spec.cost_fn}
    thresholds = np.array(spec.grid())
    conf = g.from_histograms(neg, pos, thresholds)
    m = g.metrics(conf)
    scores = g.score(conf, spec.metric, **params)
    current = g.from_histograms(neg, pos, np.array([current_threshold]))
    current_score = _num(g.score(current, spec.metric, **params)[0])
    best_i = g.choose(thresholds, scores, current_threshold)
    best_t = float(thresholds[best_i]) if best_i is not None else None
    best_score = _num(scores[best_i]) if best_i is not None else None
    rows = [{"threshold": float(t), "precision": _num(m["precision"][i]),
             "recall": _num(m["recall"][i]), "f1": _num(m["f1"][i]),
             "accuracy": _num(m["accuracy"][i]), "score": _num(scores[i])}
            for i, t in enumerate(thresholds)]
    return {"metric": spec.metric, "current_threshold": current_threshold,
            "current_score": current_score, "best_threshold": best_t, "best_score": best_score,
            # infinite when the current score is 0: JSON has no infinity, so it shows as null
            "improvement_percent": _num(g.improvement_percent(best_score, current_score)),
            "improvement_raw": g.improvement_percent(best_score, current_score),
            "samples": int(neg.sum() + pos.sum()), "grid": rows,
            "best_accuracy": rows[best_i]["accuracy"] if best_i is not None else None,
            "params": params}


def tune(svc: Services, t: Target, dry_run: bool = False) -> dict[str, Any]:
    """One tuning run of one model version (the caller holds its lock)."""
    s = svc.settings
    now = svc.clock()
    spec = TuningSpec.from_dict(t.config["tuning"])
    current = float(t.config["decision_threshold"])
    data = svc.windows.time_window(t.name, t.version, spec.window_s)
    rows = data.rows()
    neg, pos = rows["tn"] + rows["fp"], rows["fn"] + rows["tp"]
    run = {"model": t.name, "version": t.version, "parameter": spec.parameter,
           "window_s": spec.window_s, **evaluate(neg, pos, spec, current)}
    run.pop("params")
    improvement = run.pop("improvement_raw")
    interval = None
    applied = False
    if not t.config.get("enabled", True) or not spec.enabled:
        reason = "tuning_disabled"
    elif run["samples"] < s.tuning_min_samples:
        reason = "insufficient_data"
    elif run["best_threshold"] is None or run["current_score"] is None:
        reason = "undefined_metric"
    elif abs(run["best_threshold"] - current) < 1e-9:
        reason = "already_optimal"
    elif improvement is None or improvement <= s.tuning_min_improvement:
        reason = "improvement_below_minimum"
    else:
        reason = ""
        if s.tuning_require_significance:
            interval = g.bootstrap_improvement(
                neg, pos, current, run["best_threshold"], spec.metric, beta=spec.beta,
                cost_fp=spec.cost_fp, cost_fn=spec.cost_fn)
            if interval is None or interval[0] <= 0:
                reason = "not_significant"
        if not reason:
            last = svc.redis.get(keys.tuning_applied(t.name))
            if last is not None and now - float(last) < s.tuning_cooldown_s:
                reason = "cooldown"
            elif dry_run:
                reason = "dry_run"
            elif not s.auto_tuning_enabled:
                reason = "auto_tuning_disabled"
            elif svc.registry.approval_needed(t.name, t.version):
                # MLOPS_REQUIRE_APPROVAL: the change is recorded for a person to approve
                reason = "approval_required"
            else:
                applied = True
                reason = "applied"
    run["improvement_ci95"] = list(interval) if interval else None
    run["applied"] = applied
    run["reason"] = reason
    run["ran_at"] = iso(now)
    run["dry_run"] = dry_run
    if applied:
        _apply(svc, t, spec, run)
    elif not dry_run:
        log.info("Auto-tuning completed", extra={
            "model": t.name, "improvement_percent": improvement, "reason": reason,
            "samples": run["samples"]})
    if not dry_run:
        pipe = svc.redis.pipeline(transaction=False)
        pipe.lpush(keys.tuning_history(t.name), json.dumps(run))
        pipe.ltrim(keys.tuning_history(t.name), 0, HISTORY_CAP - 1)
        pipe.execute()
    return run


def _apply(svc: Services, t: Target, spec: TuningSpec, run: dict[str, Any]) -> None:
    old, new = run["current_threshold"], run["best_threshold"]
    imp = run["improvement_percent"]
    summary = f"{spec.metric} {imp:+.1f}%" if imp is not None else f"{spec.metric} up from 0"
    result = svc.registry.set_config(
        t.name, actor=ACTOR, version=t.version, changes=[("decision_threshold", new)],
        action="auto-tune",
        reason=f"{spec.parameter} {old:.2f} -> {new:.2f} ({summary}, "
               f"{run['samples']} samples)")
    svc.redis.set(keys.tuning_applied(t.name), svc.clock())
    run["revision"] = result["revision"]
    log.info(f"{t.name} auto-tuned: {spec.parameter} {old:.2f} -> {new:.2f} ({summary})",
             extra={"model": t.name, "version": t.version, "revision": result["revision"],
                    "improvement_percent": run["improvement_percent"],
                    "samples": run["samples"]})


def run_tuning(svc: Services, model: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Tune every production model (or ``model``); a model already being tuned is skipped."""
    runs = []
    for t in targets(svc.registry, model):
        with model_lock(svc.redis, t.name, "tuning") as mine:
            if not mine:
                runs.append({"model": t.name, "version": t.version, "applied": False,
                             "reason": "already_running", "ran_at": iso(svc.clock())})
                continue
            try:
                runs.append(tune(svc, t, dry_run))
            except Exception as exc:  # noqa: BLE001 - one model's failure is reported
                log.error("auto-tuning failed", extra={"model": t.name, "reason": str(exc)},
                          exc_info=True)
                runs.append({"model": t.name, "version": t.version, "applied": False,
                             "reason": f"failed: {type(exc).__name__}: {exc}",
                             "ran_at": iso(svc.clock())})
    return {"job": "tuning", "runs": runs}


def history(svc: Services, names: list[str], limit: int = 50,
            since: float | None = None) -> list[dict[str, Any]]:
    pipe = svc.redis.pipeline(transaction=False)
    for n in names:
        pipe.lrange(keys.tuning_history(n), 0, limit - 1)
    runs = [json.loads(x) for batch in pipe.execute() for x in batch]
    runs.sort(key=lambda r: r["ran_at"], reverse=True)
    if since is not None:
        runs = [r for r in runs if r["ran_at"] >= iso(since)]
    return runs[:limit]
