"""``tuning_stagnation``: a model's auto-tuning has found no improvement of 1 % or more for a week.

Judged from the tuning history (``keys.tuning_history``) of the version in production after each
tuning run of it, over the runs of the last :data:`PERIOD_S` that measured an improvement (a run
that had too few labeled predictions, had tuning disabled or had an undefined metric measured
nothing):

* ``insufficient_data`` while the history does not reach back a whole period (a week of runs is
  needed to judge), or no run of the period measured anything: nothing changes;
* ``stagnating`` when every measured improvement of the period is under :data:`PERCENT`: the
  alert fires (warning);
* ``improving`` as soon as one improvement of at least :data:`PERCENT` is recorded (an infinite
  one, from a current score of 0, counts): it resolves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import keys
from ..alerts.model import Alert
from ..timefmt import iso

if TYPE_CHECKING:
    from ..monitoring.targets import Target
    from ..services import Services

KIND = "tuning_stagnation"
PERIOD_S = 7 * 86400.0
PERCENT = 1.0  # an improvement under this is stagnant (the auto-tuning report's threshold)
UNMEASURED = ("insufficient_data", "tuning_disabled", "undefined_metric")
PAGE = 200  # runs read at a time, newest first, until one older than the period


@dataclass(frozen=True)
class Stagnation:
    status: str  # insufficient_data, stagnating, improving
    runs: int  # runs of the period that measured an improvement
    best_improvement_percent: float | None  # of those runs; None when infinite or none


def measured(run: Mapping[str, Any]) -> float | None:
    """The improvement a stored run measured, in percent (``inf`` when the current score was
    0 and the best above it); None when it measured nothing (pure)."""
    if run.get("reason") in UNMEASURED:
        return None
    if run.get("improvement_percent") is not None:
        return float(run["improvement_percent"])
    best, current = run.get("best_score"), run.get("current_score")
    if current == 0 and best is not None and best > 0:
        return float("inf")
    return None


def judge(runs: Sequence[Mapping[str, Any]], now: float) -> Stagnation:
    """The verdict on one model version's stored runs, any order (pure)."""
    start = iso(now - PERIOD_S)
    covered = any(r["ran_at"] <= start for r in runs)
    values = [v for r in runs if r["ran_at"] > start and (v := measured(r)) is not None]
    best = max(values, default=None)
    shown = best if best is None or best != float("inf") else None
    if best is not None and best >= PERCENT:
        return Stagnation("improving", len(values), shown)
    if not covered or best is None:
        return Stagnation("insufficient_data", len(values), shown)
    return Stagnation("stagnating", len(values), shown)


def message(display_name: str, s: Stagnation) -> str:
    best = "-" if s.best_improvement_percent is None else f"{s.best_improvement_percent:.2f}%"
    return (f"{display_name} Auto-Tuning Stagnating: improvements under {PERCENT:g}% for "
            f"{PERIOD_S / 86400:g} days (best {best} over {s.runs} runs)")


def period_runs(svc: Services, name: str, now: float) -> list[dict[str, Any]]:
    """The stored runs of the last period, newest first, and the newest one before it."""
    start = iso(now - PERIOD_S)
    out: list[dict[str, Any]] = []
    for offset in range(0, 1_000_000, PAGE):
        page = [json.loads(x) for x in
                svc.redis.lrange(keys.tuning_history(name), offset, offset + PAGE - 1)]
        for run in page:
            out.append(run)
            if run["ran_at"] <= start:
                return out
        if len(page) < PAGE:
            break
    return out


def check_stagnation(svc: Services, t: Target) -> Stagnation:
    """Judge the runs of ``t``'s version and raise or clear its alert; resolve the alert of a
    version no longer tuned."""
    now = svc.clock()
    verdict = judge([r for r in period_runs(svc, t.name, now) if r.get("version") == t.version],
                    now)
    if verdict.status == "stagnating":
        svc.alerts.raise_alert(Alert(
            t.name, t.version, KIND, "warning", message(t.display_name, verdict),
            {"period_days": PERIOD_S / 86400, "threshold_percent": PERCENT,
             "measured_runs": verdict.runs,
             "best_improvement_percent": verdict.best_improvement_percent}))
    elif verdict.status == "improving":
        svc.alerts.clear(t.name, t.version, KIND)
    svc.alerts.clear_other_versions(t.name, t.version, (KIND,))
    return verdict
