"""Monitoring commands: degradation checks, baselines, summaries, trends, version comparison."""

from __future__ import annotations

import time
from typing import Any

import click

from mlops_tasks.durations import parse_duration
from mlops_tasks.monitoring import degradation as deg
from mlops_tasks.monitoring.performance import last_results
from mlops_tasks.stats import drop_test
from mlops_tasks.windows import counter_metrics

from .alert_cmds import collect_alerts
from .context import App, json_option, pass_app, period_option
from .output import emit, fmt, table
from .performance_cmds import pct

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    lo, hi = min(known), max(known)
    span = hi - lo or 1.0
    return "".join(" " if v is None else SPARKS[min(7, int((v - lo) / span * 7.999))]
                   for v in values)


def _degradation_rows(results: list[dict[str, Any]]) -> str:
    return table(["model", "version", "status", "baseline", "current", "drop", "p-value",
                  "drift psi", "note"],
                 [[r["name"], r["version"], r["status"],
                   pct(r.get("baseline", {}).get("accuracy")),
                   pct(r.get("current", {}).get("accuracy")),
                   "-" if r.get("degradation_percent") is None
                   else f"{r['degradation_percent']:.1f}%",
                   fmt(r.get("p_value")), fmt(r.get("drift", {}).get("psi")),
                   r.get("reason", "")] for r in results])


@click.command("check-degradation")
@click.argument("name", required=False)
@json_option
@pass_app
def check_degradation(app: App, name: str | None, as_json: bool) -> None:
    """Run degradation detection now, here (for production models, or NAME)."""
    app.log_to_stderr()
    result = deg.run_degradation(app.services, name)
    emit(as_json, result, lambda: _degradation_rows(result["models"])
         if result["models"] else "no models deployed to production")


@click.command("verify-degradation")
@click.argument("name")
@json_option
@pass_app
def verify_degradation(app: App, name: str, as_json: bool) -> None:
    """Re-check with Fisher's exact test and a bootstrap interval: real, or a false alarm?"""
    result = deg.verify(app.services, name)
    emit(as_json, result, lambda: f"{name} v{result['version']}: {result['verdict']}\n"
                                  f"{result['explanation']}")


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
    doc = deg.set_baseline(app.services, name, window, app.actor(actor), version)
    shown = {k: v for k, v in doc.items() if not k.startswith("hist_")}
    emit(as_json, shown, f"{name} v{doc['version']}: baseline set from {window} "
                         f"({doc['labeled']} labeled, accuracy {pct(doc['accuracy'])})")


@click.command("daily-summary")
@json_option
@pass_app
def daily_summary(app: App, as_json: bool) -> None:
    """The last 24 hours of every model: metrics, alerts, monitoring status."""
    reg, reader = app.registry, app.windows
    names = reg.model_names()
    statuses = last_results(app.services, names)
    fired = collect_alerts(app, None, 86400, active_only=False)
    models = []
    for n in names:
        version = reg.default_version(n)
        day = reader.time_window(n, version, 86400, with_hist=False).counts
        models.append({
            "name": n, "version": version, "last_24h": counter_metrics(day),
            "alerts": [a for a in fired if a["model"] == n],
            "monitoring_status": statuses.get(n, {}).get("status"),
            "pending_labels": reader.pending(n)})
    doc = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "models": models}
    emit(as_json, doc, lambda: table(
        ["model", "version", "predictions", "labeled", "accuracy", "f1", "fpr", "alerts",
         "status"],
        [[m["name"], m["version"], m["last_24h"]["predictions"], m["last_24h"]["count"],
          pct(m["last_24h"]["accuracy"]), pct(m["last_24h"]["f1"]),
          pct(m["last_24h"]["false_positive_rate"]), len(m["alerts"]),
          m["monitoring_status"]] for m in models]))


@click.command("degradation-report")
@period_option
@json_option
@pass_app
def degradation_report(app: App, period: str, as_json: bool) -> None:
    """Degradation and drift incidents over a period."""
    since_s = parse_duration(period, "--since")
    incidents = [a for a in collect_alerts(app, None, since_s, active_only=False)
                 if a["kind"] in (deg.KIND, deg.DRIFT_KIND)]
    by_model: dict[str, int] = {}
    for a in incidents:
        by_model[a["model"]] = by_model.get(a["model"], 0) + 1
    doc = {"period_s": since_s, "incidents": incidents, "by_model": by_model}
    emit(as_json, doc, lambda: table(
        ["fired at", "resolved at", "model", "version", "kind", "severity", "drop", "p-value"],
        [[a["fired_at"], a["resolved_at"], a["model"], a["version"], a["kind"], a["severity"],
          fmt(a["values"].get("degradation_percent")), fmt(a["values"].get("p_value"))]
         for a in incidents]) if incidents else "no degradation incidents")


@click.command("performance-trends")
@click.argument("name")
@click.option("--last-month", "days", flag_value=30, default=True, type=int,
              help="The last 30 days (default).")
@click.option("--days", "days", type=click.IntRange(2, 366), help="Another number of days.")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@json_option
@pass_app
def performance_trends(app: App, name: str, days: int, version: str | None,
                       as_json: bool) -> None:
    """Daily metrics with a sparkline per metric."""
    version = version or app.registry.default_version(name)
    daily = app.windows.daily(name, version, days)
    series: dict[str, list[Any]] = {"day": [], "predictions": [], "labeled": [], "accuracy": [],
                                    "precision": [], "recall": [], "f1": [],
                                    "false_positive_rate": []}
    for start, counts in daily:
        m = counter_metrics(counts)
        series["day"].append(time.strftime("%Y-%m-%d", time.gmtime(start)))
        series["predictions"].append(m["predictions"])
        series["labeled"].append(m["count"])
        for k in ("accuracy", "precision", "recall", "f1", "false_positive_rate"):
            series[k].append(m[k])
    doc = {"name": name, "version": version, "days": days, "series": series}

    def human() -> str:
        rows = []
        for k, values in series.items():
            if k == "day":
                continue
            known = [v for v in values if v is not None]
            last = known[-1] if known else None
            rows.append([k, sparkline(values), fmt(min(known)) if known else "-",
                         fmt(max(known)) if known else "-", fmt(last)])
        return f"{name} v{version}, {series['day'][0]} .. {series['day'][-1]}\n\n" + \
            table(["metric", "trend", "min", "max", "last"], rows)
    emit(as_json, doc, human)


@click.command("compare-versions")
@click.argument("name")
@click.argument("v1")
@click.argument("v2")
@json_option
@pass_app
def compare_versions(app: App, name: str, v1: str, v2: str, as_json: bool) -> None:
    """Metrics of two versions side by side, with the significance of the accuracy difference."""
    reader = app.windows
    out = {}
    for v in (v1, v2):
        app.registry.current(name, v)
        out[v] = counter_metrics(reader.totals(name, v))
    a, b = out[v1], out[v2]
    significance: dict[str, Any] = {"test": None, "p_value": None}
    if a["count"] and b["count"]:
        xa, xb = a["tp"] + a["tn"], b["tp"] + b["tn"]
        lower = drop_test(xa, a["count"], xb, b["count"])  # H1: v2 worse
        higher = drop_test(xb, b["count"], xa, a["count"])  # H1: v2 better
        significance = {"test": lower.method,
                        "p_value": min(1.0, 2 * min(lower.p_value, higher.p_value)),
                        "better": v2 if higher.p_value < lower.p_value else v1}
    doc = {"name": name, "versions": {v1: a, v2: b}, "accuracy_difference": significance}
    keys = ["count", "accuracy", "precision", "recall", "f1", "false_positive_rate",
            "avg_confidence", "latency_p50_ms", "latency_p95_ms"]
    emit(as_json, doc, lambda: table(["metric", v1, v2], [[k, fmt(a[k]), fmt(b[k])]
                                                        for k in keys]) +
         f"\n\naccuracy difference: p = {fmt(significance['p_value'])} "
         f"({significance['test'] or 'no data'}, two-sided)")


def register(group: click.Group) -> None:
    for command in (check_degradation, verify_degradation, set_baseline, daily_summary,
                    degradation_report, performance_trends, compare_versions):
        group.add_command(command)

