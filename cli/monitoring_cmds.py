"""Monitoring commands: degradation checks, baselines, summaries, trends, version comparison."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from mlops_tasks import reports
from mlops_tasks.durations import parse_duration
from mlops_tasks.monitoring.results import NotChecked

from .context import App, json_option, pass_app, period_option
from .output import emit, fmt, pct, table

if TYPE_CHECKING:
    from mlops_tasks.monitoring.results import DegradationCheck

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    lo, hi = min(known), max(known)
    span = hi - lo or 1.0
    return "".join(" " if v is None else SPARKS[min(7, int((v - lo) / span * 7.999))]
                   for v in values)


def _degradation_row(r: DegradationCheck | NotChecked) -> list[Any]:
    if isinstance(r, NotChecked):
        return [r.name, r.version, r.status, pct(None), pct(None), "-", fmt(None), "-",
                fmt(None), r.reason]
    e = r.evidence
    drop = "-"
    if e is not None:
        drop = f"{e.degradation_percent:.1f}%"
        if e.drop_ci95:
            drop += f" [{e.drop_ci95[0]:.1f}, {e.drop_ci95[1]:.1f}]"
    return [r.name, r.version, r.status, pct(r.baseline.accuracy), pct(r.current.accuracy),
            drop, fmt(None if e is None else e.p_value),
            "-" if e is None else f"{e.window_checks}", fmt(r.drift.ks_statistic),
            r.reason or ""]


def _degradation_rows(results: Sequence[DegradationCheck | NotChecked]) -> str:
    return table(["model", "version", "status", "baseline", "current", "drop [95% CI]",
                  "p-value", "checks", "drift KS", "note"],
                 [_degradation_row(r) for r in results])


@click.command("check-degradation")
@click.argument("name", required=False)
@json_option
@pass_app
def check_degradation(app: App, name: str | None, as_json: bool) -> None:
    """Run degradation detection now, here (for production models, or NAME)."""
    from mlops_tasks.monitoring.degradation import run_degradation  # noqa: PLC0415 - scipy

    app.log_to_stderr()
    result = run_degradation(app.services, name)
    emit(as_json, result.to_dict(), lambda: _degradation_rows(result.models)
         if result.models else "no models deployed to production")


@click.command("verify-degradation")
@click.argument("name")
@json_option
@pass_app
def verify_degradation(app: App, name: str, as_json: bool) -> None:
    """Re-check with Fisher's exact test and a bootstrap interval: real, or a false alarm?"""
    from mlops_tasks.monitoring.degradation import verify  # noqa: PLC0415 - scipy

    result = verify(app.services, name)
    emit(as_json, result.to_dict(), lambda: f"{name} v{result.check.version}: "
                                            f"{result.verdict}\n{result.explanation}")


@click.command("set-baseline")
@click.argument("name")
@click.option("--window", default="last_1000", show_default=True,
              help="last_100, last_1000, since_deployment, last_hour, or a duration (24h).")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@click.option("--actor", metavar="NAME", help="Who (default: MLOPS_ACTOR, else the OS user).")
@json_option
@pass_app
def set_baseline(app: App, name: str, window: str, version: str | None, actor: str | None,
                 as_json: bool) -> None:
    """Set the baseline that degradation detection compares with."""
    from mlops_tasks.monitoring.degradation import set_baseline as set_it  # noqa: PLC0415 - numpy

    doc = set_it(app.services, name, window, app.actor(actor), version)
    shown = {k: v for k, v in doc.items() if not k.startswith("hist_")}
    emit(as_json, shown, f"{name} v{doc['version']}: baseline set from {window} "
                         f"({doc['labeled']} labeled, accuracy {pct(doc['accuracy'])})")


@click.command("daily-summary")
@json_option
@pass_app
def daily_summary(app: App, as_json: bool) -> None:
    """The last 24 hours of every model: metrics, alerts, monitoring status."""
    doc = reports.daily_summary(app.services).to_dict()
    emit(as_json, doc, lambda: table(
        ["model", "version", "predictions", "labeled", "accuracy", "f1", "fpr", "alerts",
         "status"],
        [[m["name"], m["version"], m["last_24h"]["predictions"], m["last_24h"]["count"],
          pct(m["last_24h"]["accuracy"]), pct(m["last_24h"]["f1"]),
          pct(m["last_24h"]["false_positive_rate"]), len(m["alerts"]),
          m["monitoring_status"]] for m in doc["models"]]))


@click.command("degradation-report")
@period_option
@json_option
@pass_app
def degradation_report(app: App, period: str, as_json: bool) -> None:
    """Degradation and drift incidents over a period."""
    since_s = parse_duration(period, "--since")
    doc = reports.degradation_report(app.services, since_s).to_dict()
    incidents = doc["incidents"]
    emit(as_json, doc, lambda: table(
        ["fired at", "resolved at", "model", "version", "kind", "severity", "drop", "p-value"],
        [[a["fired_at"], a["resolved_at"], a["model"], a["version"], a["kind"], a["severity"],
          fmt(a["values"].get("degradation_percent")), fmt(a["values"].get("p_value"))]
         for a in incidents]) if incidents else "no degradation incidents")


def _trend_table(doc: dict[str, Any]) -> str:
    """One model's trends: a sparkline, min, max and last value per metric."""
    series = doc["series"]
    rows = []
    for k, values in series.items():
        if k == "day":
            continue
        known = [v for v in values if v is not None]
        last = known[-1] if known else None
        rows.append([k, sparkline(values), fmt(min(known)) if known else "-",
                     fmt(max(known)) if known else "-", fmt(last)])
    return f"{doc['name']} v{doc['version']}, {series['day'][0]} .. {series['day'][-1]}\n\n" + \
        table(["metric", "trend", "min", "max", "last"], rows)


@click.command("performance-trends")
@click.argument("name", required=False)
@click.option("--last-month", "days", flag_value=30, default=True, type=int,
              help="The last 30 days (default).")
@click.option("--days", "days", type=click.IntRange(2, 366), help="Another number of days.")
@click.option("--version", metavar="V",
              help="Version (default: production's, else latest); needs NAME.")
@json_option
@pass_app
def performance_trends(app: App, name: str | None, days: int, version: str | None,
                       as_json: bool) -> None:
    """Daily metrics with a sparkline per metric.

    Of NAME, or of every registered model without it."""
    if name is None:
        if version is not None:
            raise click.UsageError("--version needs a model NAME")
        every = reports.all_performance_trends(app.services, days).to_dict()
        emit(as_json, every, lambda: "\n\n".join(_trend_table(d) for d in every["models"])
             or "no models registered")
        return
    doc = reports.performance_trends(app.services, name, days, version).to_dict()
    emit(as_json, doc, lambda: _trend_table(doc))


@click.command("compare-versions")
@click.argument("name")
@click.argument("v1")
@click.argument("v2")
@json_option
@pass_app
def compare_versions(app: App, name: str, v1: str, v2: str, as_json: bool) -> None:
    """Metrics of two versions side by side, with the significance of the accuracy difference."""
    doc = reports.compare_versions(app.services, name, v1, v2).to_dict()
    a, b = doc["versions"][v1], doc["versions"][v2]
    significance = doc["accuracy_difference"]
    shown = ["count", "accuracy", "precision", "recall", "f1", "false_positive_rate",
             "avg_confidence", "latency_p50_ms", "latency_p95_ms"]
    emit(as_json, doc, lambda: table(["metric", v1, v2], [[k, fmt(a[k]), fmt(b[k])]
                                                        for k in shown]) +
         f"\n\naccuracy difference: p = {fmt(significance['p_value'])} "
         f"({significance['test'] or 'no data'}, two-sided)")


def register(group: click.Group) -> None:
    for command in (check_degradation, verify_degradation, set_baseline, daily_summary,
                    degradation_report, performance_trends, compare_versions):
        group.add_command(command)
