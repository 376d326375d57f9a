"""Auto-tuning commands: history, weekly report, recommendations."""

from __future__ import annotations

from typing import Any

import click

from mlops_tasks.durations import parse_duration
from mlops_tasks.monitoring.targets import targets
from mlops_tasks.tuning import engine

from .context import App, json_option, pass_app, period_option
from .output import emit, fmt, table

STAGNATION_PERCENT = 1.0


def _runs_table(runs: list[dict[str, Any]]) -> str:
    return table(["ran at", "model", "version", "metric", "current", "best", "improvement",
                  "samples", "applied", "reason"],
                 [[r["ran_at"], r["model"], r.get("version"), r.get("metric"),
                   fmt(r.get("current_threshold")), fmt(r.get("best_threshold")),
                   "-" if r.get("improvement_percent") is None
                   else f"{r['improvement_percent']:+.1f}%",
                   r.get("samples"), r["applied"], r["reason"]] for r in runs])


@click.command("auto-tuning-history")
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
@pass_app
def auto_tuning_history(app: App, name: str | None, limit: int, as_json: bool) -> None:
    """Tuning runs, newest first, each with its whole grid."""
    if name:
        app.registry.meta(name)
    runs = engine.history(app.services, [name] if name else app.registry.model_names(), limit)
    emit(as_json, {"runs": runs}, lambda: _runs_table(runs) if runs else "no tuning runs yet")


@click.command("auto-tuning-report")
@period_option
@json_option
@pass_app
def auto_tuning_report(app: App, period: str, as_json: bool) -> None:
    """Runs, applications, average improvement and stagnation per model."""
    since_s = parse_duration(period, "--since")
    names = app.registry.model_names()
    runs = engine.history(app.services, names, limit=100_000,
                          since=app.services.clock() - since_s)
    models = []
    for n in names:
        mine = [r for r in runs if r["model"] == n]
        applied = [r for r in mine if r["applied"]]
        measured = [r["improvement_percent"] for r in mine
                    if r.get("improvement_percent") is not None and r["samples"] >= 1]
        models.append({
            "name": n, "runs": len(mine), "applied": len(applied),
            "average_improvement_percent": (sum(r["improvement_percent"] for r in applied)
                                            / len(applied)) if applied else None,
            "stagnant_runs": sum(1 for v in measured if v < STAGNATION_PERCENT),
            "stagnating": bool(measured) and all(v < STAGNATION_PERCENT for v in measured),
            "reasons": {reason: sum(1 for r in mine if r["reason"] == reason)
                        for reason in sorted({r["reason"] for r in mine})}})
    doc = {"period_s": since_s, "runs": len(runs),
           "applied": sum(m["applied"] for m in models), "models": models}
    emit(as_json, doc, lambda: table(
        ["model", "runs", "applied", "avg improvement", "under 1%", "stagnating"],
        [[m["name"], m["runs"], m["applied"], fmt(m["average_improvement_percent"]),
          m["stagnant_runs"], m["stagnating"]] for m in models]))


def recommend(run: dict[str, Any], config: dict[str, Any], min_samples: int,
              min_improvement: float) -> tuple[str, str]:
    """One recommendation for a model from a dry-run evaluation of its tuning window."""
    t = config["tuning"]
    if run["samples"] < min_samples:
        return "collect more labels", (f"{run['samples']} labeled predictions in the tuning "
                                       f"window, {min_samples} needed")
    best_acc = run.get("best_accuracy")
    if best_acc is not None and best_acc < config["accuracy_threshold"]:
        return "retrain", (f"even the best threshold gives accuracy {best_acc:.2%}, under the "
                           f"alert threshold {config['accuracy_threshold']:.2%}")
    best = run["best_threshold"]
    edge_low = best is not None and abs(best - t["min"]) < 1e-9 and t["min"] > 0
    edge_high = best is not None and abs(best - t["max"]) < 1e-9 and t["max"] < 1
    if edge_low or edge_high:
        side = "down" if edge_low else "up"
        return "widen the range", (f"the best threshold {best:g} sits on the edge of "
                                   f"{t['min']:g}-{t['max']:g}; extend it {side}")
    if run["improvement_percent"] is not None and run["improvement_percent"] > min_improvement:
        return "tune", (f"{t['metric']} would improve {run['improvement_percent']:+.1f}% at "
                        f"{best:g} (now {run['current_threshold']:g})")
    return "none", "the current threshold is at or near the best of the grid"


@click.command("improvement-recommendations")
@json_option
@pass_app
def improvement_recommendations(app: App, as_json: bool) -> None:
    """What to do next for each production model: tune, retrain, collect labels, widen range."""
    svc = app.services
    out = []
    for t in targets(svc.registry):
        run = engine.tune(svc, t, dry_run=True)
        action, why = recommend(run, t.config, svc.settings.tuning_min_samples,
                                svc.settings.tuning_min_improvement)
        out.append({"name": t.name, "version": t.version, "recommendation": action,
                    "reason": why, "samples": run["samples"],
                    "current_threshold": run["current_threshold"],
                    "best_threshold": run["best_threshold"],
                    "improvement_percent": run["improvement_percent"]})
    emit(as_json, {"models": out}, lambda: table(
        ["model", "version", "recommendation", "why"],
        [[m["name"], m["version"], m["recommendation"], m["reason"]] for m in out])
        if out else "no models deployed to production")


def register(group: click.Group) -> None:
    for command in (auto_tuning_history, auto_tuning_report, improvement_recommendations):
        group.add_command(command)
