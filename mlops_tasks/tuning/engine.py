"""The auto-tuning engine: evaluate the grid on the tuning window, decide, apply, record.

A new threshold is applied only when
    AUTO_TUNING_ENABLED is true (otherwise the run is recorded only),
    the window holds at least MLOPS_TUNING_MIN_SAMPLES labeled predictions,
    the improvement exceeds MLOPS_TUNING_MIN_IMPROVEMENT percent,
    the bootstrap interval of the improvement excludes zero (MLOPS_TUNING_REQUIRE_SIGNIFICANCE),
    and the model was not retuned within MLOPS_TUNING_COOLDOWN_S.
Applying writes a configuration revision with actor ``auto-tuner``, so ``rollback-config``
undoes it, and announces the info event ``auto_tuning_applied``. Every run, applied or not, is
kept in the tuning history with its whole grid; after each run the model is judged for
``tuning_stagnation`` (stagnation.py).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from typing import Any

import numpy as np

from .. import keys
from ..alerts.model import Alert
from ..jobs import time_limit_reached
from ..locks import model_lock
from ..monitoring.targets import Target, targets
from ..registry.config import TuningSpec
from ..services import Services
from ..timefmt import iso
from . import grid as g
from .results import Evaluation, GridPoint, TuningResult, TuningRun, TuningSkipped
from .stagnation import check_stagnation

log = logging.getLogger("mlops.tuning")

ACTOR = "auto-tuner"
HISTORY_CAP = 5000
APPLIED_KIND = "auto_tuning_applied"


def _num(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def evaluate(neg: np.ndarray, pos: np.ndarray, spec: TuningSpec,
             current_threshold: float) -> Evaluation:
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
    grid = tuple(GridPoint(threshold=float(t), precision=_num(m["precision"][i]),
                           recall=_num(m["recall"][i]), f1=_num(m["f1"][i]),
                           accuracy=_num(m["accuracy"][i]), score=_num(scores[i]))
                 for i, t in enumerate(thresholds))
    improvement = g.improvement_percent(best_score, current_score)
    return Evaluation(
        metric=spec.metric, current_threshold=current_threshold, current_score=current_score,
        best_threshold=best_t, best_score=best_score,
        # infinite when the current score is 0: JSON has no infinity, so it shows as null
        improvement_percent=_num(improvement), improvement_raw=improvement,
        samples=int(neg.sum() + pos.sum()), grid=grid,
        best_accuracy=grid[best_i].accuracy if best_i is not None else None)


def _decide(svc: Services, t: Target, spec: TuningSpec, ev: Evaluation, neg: np.ndarray,
            pos: np.ndarray, now: float,
            dry_run: bool) -> tuple[str, tuple[float, float] | None]:
    """Whether the run applies its best threshold ("applied") or why not, and the bootstrap
    interval of the improvement when it was computed."""
    s = svc.settings
    interval = None
    if not t.config.get("enabled", True) or not spec.enabled:
        reason = "tuning_disabled"
    elif ev.samples < s.tuning_min_samples:
        reason = "insufficient_data"
    elif ev.best_threshold is None or ev.current_score is None:
        reason = "undefined_metric"
    elif abs(ev.best_threshold - ev.current_threshold) < 1e-9:
        reason = "already_optimal"
    elif ev.improvement_raw is None or ev.improvement_raw <= s.tuning_min_improvement:
        reason = "improvement_below_minimum"
    else:
        if s.tuning_require_significance:
            interval = g.bootstrap_improvement(
                neg, pos, ev.current_threshold, ev.best_threshold, spec.metric, beta=spec.beta,
                cost_fp=spec.cost_fp, cost_fn=spec.cost_fn)
        if s.tuning_require_significance and (interval is None or interval[0] <= 0):
            reason = "not_significant"
        else:
            reason = _gate(svc, t, now, dry_run)
    return reason, interval


def _gate(svc: Services, t: Target, now: float, dry_run: bool) -> str:
    """Whether a significant improvement is applied now ("applied"), or what holds it back."""
    s = svc.settings
    last = svc.redis.get(keys.tuning_applied(t.name))
    if last is not None and now - float(last) < s.tuning_cooldown_s:
        return "cooldown"
    if dry_run:
        return "dry_run"
    if not s.auto_tuning_enabled:
        return "auto_tuning_disabled"
    if svc.registry.approval_needed(t.name, t.version):
        # MLOPS_REQUIRE_APPROVAL: the change is recorded for a person to approve
        return "approval_required"
    return "applied"


def tune(svc: Services, t: Target, dry_run: bool = False) -> TuningRun:
    """One tuning run of one model version (the caller holds its lock)."""
    now = svc.clock()
    spec = TuningSpec.from_dict(t.config["tuning"])
    current = float(t.config["decision_threshold"])
    data = svc.windows.time_window(t.name, t.version, spec.window_s)
    rows = data.rows()
    neg, pos = rows["tn"] + rows["fp"], rows["fn"] + rows["tp"]
    ev = evaluate(neg, pos, spec, current)
    reason, interval = _decide(svc, t, spec, ev, neg, pos, now, dry_run)
    run = TuningRun(model=t.name, version=t.version, parameter=spec.parameter,
                    window_s=spec.window_s, evaluation=ev, improvement_ci95=interval,
                    applied=reason == "applied", reason=reason, ran_at=iso(now),
                    dry_run=dry_run)
    if run.applied:
        run = replace(run, revision=_apply(svc, t, spec, ev))
    elif not dry_run:
        log.info("Auto-tuning completed", extra={
            "model": t.name, "improvement_percent": ev.improvement_raw, "reason": reason,
            "samples": ev.samples})
    if not dry_run:
        pipe = svc.redis.pipeline(transaction=False)
        pipe.lpush(keys.tuning_history(t.name), json.dumps(run.to_dict()))
        pipe.ltrim(keys.tuning_history(t.name), 0, HISTORY_CAP - 1)
        pipe.execute()
    return run


def _apply(svc: Services, t: Target, spec: TuningSpec, ev: Evaluation) -> int:
    """Write the best threshold as a configuration revision; returns the revision."""
    old, new, imp = ev.current_threshold, ev.best_threshold, ev.improvement_percent
    if new is None:  # _decide applies only a defined best threshold
        raise ValueError(f"{t.name}: no best threshold to apply")
    summary = f"{spec.metric} {imp:+.1f}%" if imp is not None else f"{spec.metric} up from 0"
    result = svc.registry.set_config(
        t.name, actor=ACTOR, version=t.version, changes=[("decision_threshold", new)],
        action="auto-tune",
        reason=f"{spec.parameter} {old:.2f} -> {new:.2f} ({summary}, "
               f"{ev.samples} samples)")
    svc.redis.set(keys.tuning_applied(t.name), svc.clock())
    revision: int = result["revision"]
    log.info("%s auto-tuned: %s %.2f -> %.2f (%s)", t.name, spec.parameter, old, new, summary,
             extra={"model": t.name, "version": t.version, "revision": revision,
                    "improvement_percent": imp, "samples": ev.samples})
    event = Alert(t.name, t.version, APPLIED_KIND, "info",
                  f"{t.display_name} auto-tuning applied: {spec.parameter} {old:.2f} -> "
                  f"{new:.2f} ({summary})",
                  {"parameter": spec.parameter, "old_threshold": old, "new_threshold": new,
                   "metric": spec.metric, "improvement_percent": imp, "samples": ev.samples,
                   "revision": revision})
    try:
        svc.alerts.announce(event, occurrence=f"revision {revision}")
    except Exception as exc:  # the revision is written: a failed notification never hides it
        if time_limit_reached(exc):
            raise
        log.exception("auto_tuning_applied notification failed", extra={"model": t.name})
    return revision


def run_tuning(svc: Services, model: str | None = None, dry_run: bool = False) -> TuningResult:
    """Tune every production model (or ``model``); a model already being tuned is skipped."""
    runs: list[TuningRun | TuningSkipped] = []
    for t in targets(svc.registry, model):
        with model_lock(svc.redis, t.name, "tuning") as mine:
            if not mine:
                runs.append(TuningSkipped(t.name, t.version, "already_running",
                                          iso(svc.clock())))
                continue
            try:
                runs.append(tune(svc, t, dry_run))
            except Exception as exc:  # one model's failure is reported (and logged)
                if time_limit_reached(exc):
                    raise
                log.exception("auto-tuning failed",
                              extra={"model": t.name, "reason": str(exc)})
                runs.append(TuningSkipped(t.name, t.version,
                                          f"failed: {type(exc).__name__}: {exc}",
                                          iso(svc.clock())))
                continue
            if not dry_run:
                _judge_stagnation(svc, t)
    return TuningResult(tuple(runs))


def _judge_stagnation(svc: Services, t: Target) -> None:
    """Raise or clear ``tuning_stagnation`` after a run; a failure is logged, and never the
    run's (it is recorded already)."""
    try:
        check_stagnation(svc, t)
    except Exception as exc:
        if time_limit_reached(exc):
            raise
        log.exception("tuning stagnation check failed",
                      extra={"model": t.name, "reason": str(exc)})


def history(svc: Services, names: list[str], limit: int = 50,
            since: float | None = None) -> list[dict[str, Any]]:
    """The runs kept of ``names`` (each the JSON of a ``TuningRun``, as it was written, older
    entries included), newest first, at most ``limit``, ran at ``since`` or later."""
    pipe = svc.redis.pipeline(transaction=False)
    for n in names:
        pipe.lrange(keys.tuning_history(n), 0, limit - 1)
    runs = [json.loads(x) for batch in pipe.execute() for x in batch]
    runs.sort(key=lambda r: r["ran_at"], reverse=True)
    if since is not None:
        runs = [r for r in runs if r["ran_at"] >= iso(since)]
    return runs[:limit]
