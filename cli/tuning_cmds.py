"""Auto-tuning commands: history, weekly report, recommendations."""

from __future__ import annotations

from typing import Any

import click

from mlops_tasks import reports
from mlops_tasks.durations import parse_duration

from .context import App, json_option, pass_app, period_option
from .output import emit, fmt, table


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
    from mlops_tasks.tuning.engine import history  # noqa: PLC0415 - numpy

    if name:
        app.registry.meta(name)
    runs = history(app.services, [name] if name else app.registry.model_names(), limit)
    emit(as_json, {"runs": runs}, lambda: _runs_table(runs) if runs else "no tuning runs yet")


@click.command("auto-tuning-report")
@period_option
@json_option
@pass_app
def auto_tuning_report(app: App, period: str, as_json: bool) -> None:
    """Runs, applications, average improvement and stagnation per model."""
    doc = reports.tuning_report(app.services, parse_duration(period, "--since")).to_dict()
    emit(as_json, doc, lambda: table(
        ["model", "runs", "applied", "avg improvement", "under 1%", "stagnating"],
        [[m["name"], m["runs"], m["applied"], fmt(m["average_improvement_percent"]),
          m["stagnant_runs"], m["stagnating"]] for m in doc["models"]]))


@click.command("improvement-recommendations")
@json_option
@pass_app
def improvement_recommendations(app: App, as_json: bool) -> None:
    """What to do next for each production model: tune, retrain, collect labels, widen range."""
    doc = reports.improvement_recommendations(app.services).to_dict()
    models = doc["models"]
    emit(as_json, doc, lambda: table(
        ["model", "version", "recommendation", "why"],
        [[m["name"], m["version"], m["recommendation"], m["reason"]] for m in models])
        if models else "no models deployed to production")


def register(group: click.Group) -> None:
    for command in (auto_tuning_history, auto_tuning_report, improvement_recommendations):
        group.add_command(command)
