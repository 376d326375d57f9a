"""Performance commands: windowed metrics, label health, error analysis, dead letters."""

from __future__ import annotations

import time
from typing import Any

import click
import numpy as np

from mlops_tasks import deadletters
from mlops_tasks.binning import SCORE_RESOLUTION
from mlops_tasks.durations import format_duration, parse_duration
from mlops_tasks.metrics import confusion_metrics, samples_to_detect_drop
from mlops_tasks.windows import counter_metrics, delay_quantiles

from .context import App, json_option, pass_app
from .output import emit, fmt, table

TUNING_MIN_SAMPLES = 100


def pct(x: Any) -> str:
    return "-" if x is None else f"{x * 100:.2f}%"


def metrics_table(windows: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, m in windows.items():
        rows.append([name, m["count"], pct(m["accuracy"]), pct(m["precision"]),
                     pct(m["recall"]), pct(m["f1"]), pct(m["false_positive_rate"]),
                     fmt(m["avg_confidence"]), fmt(m["latency_p50_ms"]),
                     fmt(m["latency_p95_ms"])])
    return table(["window", "labeled", "accuracy", "precision", "recall", "f1", "fpr",
                  "avg conf", "p50 ms", "p95 ms"], rows)


def model_summary(app: App, name: str) -> dict[str, Any]:
    version = app.registry.default_version(name)
    reader = app.windows
    counters = reader.counters(name)
    return {"name": name, "version": version, "windows": reader.windows(name, version),
            "pending_labels": reader.pending(name),
            "orphan_labels": counters.get("orphan_labels", 0),
            "duplicate_ids": counters.get("duplicate_ids", 0),
            "dead_letters": counters.get("dead_letters", 0)}


@click.command("performance-summary")
@json_option
@pass_app
def performance_summary(app: App, as_json: bool) -> None:
    """Current metrics of every model (production's version, else the latest)."""
    models = [model_summary(app, n) for n in app.registry.model_names()]

    def human() -> str:
        parts = []
        for m in models:
            parts.append(f"{m['name']} v{m['version']}  (pending labels {m['pending_labels']}, "
                         f"orphan labels {m['orphan_labels']}, dead letters {m['dead_letters']})")
            parts.append(metrics_table(m["windows"]))
        return "\n\n".join(parts) or "no models registered"
    emit(as_json, {"models": models}, human)


def _version(app: App, name: str, version: str | None) -> str:
    if version is None:
        return app.registry.default_version(name)
    app.registry.current(name, version)  # validates
    return version


@click.command("performance-details")
@click.argument("name")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@click.option("--recent", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Metrics of the last N labeled outcomes.")
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True,
              help="Days of daily history.")
@json_option
@pass_app
def performance_details(app: App, name: str, version: str | None, recent: int, days: int,
                        as_json: bool) -> None:
    """Windows, the last N outcomes and the daily history of one model."""
    version = _version(app, name, version)
    reader = app.windows
    windows = reader.windows(name, version)
    windows[f"last_{recent}"] = reader.count_window(name, version, recent)
    daily = [{"day": time.strftime("%Y-%m-%d", time.gmtime(start)), **counter_metrics(c)}
             for start, c in reader.daily(name, version, days)]
    doc = {"name": name, "version": version, "windows": windows, "daily": daily,
           "pending_labels": reader.pending(name)}

    def human() -> str:
        out = f"{name} v{version}\n\n" + metrics_table(windows)
        out += "\n\n" + table(["day", "predictions", "labeled", "accuracy", "f1", "fpr"],
                              [[d["day"], d["predictions"], d["count"], pct(d["accuracy"]),
                                pct(d["f1"]), pct(d["false_positive_rate"])] for d in daily])
        return out
    emit(as_json, doc, human)


@click.command("data-sufficiency")
@click.argument("name")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@json_option
@pass_app
def data_sufficiency(app: App, name: str, version: str | None, as_json: bool) -> None:
    """Labeled counts per window against what tuning and significance tests need."""
    version = _version(app, name, version)
    reader = app.windows
    config = app.registry.current(name, version)["config"]
    tuning_window = int(config["tuning"]["window_s"])
    total = counter_metrics(reader.totals(name, version))
    reference = total["accuracy"] if total["accuracy"] is not None else config["accuracy_threshold"]
    needed_sig = samples_to_detect_drop(reference)
    counts = {
        "last_100": reader.count_window(name, version, 100)["count"],
        "last_1000": reader.count_window(name, version, 1000)["count"],
        f"tuning_window_{format_duration(tuning_window)}": int(reader.time_window(
            name, version, tuning_window, with_hist=False).counts.get("labeled", 0)),
        "since_deployment": total["count"],
    }
    windows = [{"window": w, "labeled": c,
                "enough_for_tuning": c >= TUNING_MIN_SAMPLES,
                "enough_to_detect_5pct_drop": None if needed_sig is None else c >= needed_sig}
               for w, c in counts.items()]
    doc = {"name": name, "version": version,
           "requirements": {"tuning_min_samples": TUNING_MIN_SAMPLES,
                            "detect_5pct_drop_samples": needed_sig,
                            "reference_accuracy": reference},
           "windows": windows}
    emit(as_json, doc, lambda: (
        f"{name} v{version}: tuning needs {TUNING_MIN_SAMPLES} labeled predictions; detecting a "
        f"5% accuracy drop from {pct(reference)} (p<0.05, power 0.8) needs "
        f"{fmt(needed_sig)} per window\n\n" + table(
            ["window", "labeled", "tuning", "5% drop"],
            [[w["window"], w["labeled"], "enough" if w["enough_for_tuning"] else "too few",
              "-" if w["enough_to_detect_5pct_drop"] is None else
              ("enough" if w["enough_to_detect_5pct_drop"] else "too few")] for w in windows])))


@click.command("validate-ground-truth")
@click.argument("name")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@json_option
@pass_app
def validate_ground_truth(app: App, name: str, version: str | None, as_json: bool) -> None:
    """Label coverage, label delays, orphans and predictions still waiting for a label."""
    version = _version(app, name, version)
    reader = app.windows
    totals = reader.totals(name, version)
    counters = reader.counters(name)
    coverage = {}
    for label, window_s in (("last_hour", 3600), ("last_day", 86400)):
        c = reader.time_window(name, version, window_s, with_hist=False).counts
        coverage[label] = {"predictions": int(c.get("n", 0)), "labeled": int(c.get("labeled", 0))}
    coverage["since_deployment"] = {"predictions": int(totals.get("n", 0)),
                                    "labeled": int(totals.get("labeled", 0))}
    for v in coverage.values():
        v["coverage"] = v["labeled"] / v["predictions"] if v["predictions"] else None
    p50, p95, p99 = delay_quantiles(totals, (0.5, 0.95, 0.99))
    doc = {"name": name, "version": version, "coverage": coverage,
           "label_delay_s": {"delayed_labels": int(totals.get("delayed", 0)), "p50": p50,
                             "p95": p95, "p99": p99},
           "pending_labels": reader.pending(name),
           "orphan_labels": counters.get("orphan_labels", 0),
           "labels_joined": counters.get("labels_joined", 0),
           "duplicate_ids": counters.get("duplicate_ids", 0),
           "label_ttl_days": app.settings.label_ttl_days}

    def human() -> str:
        d = doc["label_delay_s"]
        out = table(["window", "predictions", "labeled", "coverage"],
                    [[k, v["predictions"], v["labeled"], pct(v["coverage"])]
                     for k, v in coverage.items()])
        out += (f"\n\nlabel delay: p50 {fmt(d['p50'])}s, p95 {fmt(d['p95'])}s, "
                f"p99 {fmt(d['p99'])}s over {d['delayed_labels']} delayed labels"
                f"\npending labels {doc['pending_labels']}, orphan labels "
                f"{doc['orphan_labels']}, duplicate ids {doc['duplicate_ids']}")
        return out
    emit(as_json, doc, human)


@click.command("analyze-errors")
@click.argument("name")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@click.option("--window", "window", default="24h", show_default=True,
              help="Time window, e.g. 1h, 24h, 7d.")
@click.option("--bands", type=click.IntRange(2, 100), default=10, show_default=True,
              help="Number of equal score bands.")
@json_option
@pass_app
def analyze_errors(app: App, name: str, version: str | None, window: str, bands: int,
                   as_json: bool) -> None:
    """False positives and false negatives by score band."""
    window_s = parse_duration(window, "--window")
    version = _version(app, name, version)
    data = app.windows.time_window(name, version, window_s)
    rows = data.rows()
    edges = np.linspace(0, SCORE_RESOLUTION + 1, bands + 1).round().astype(int)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        tn, fp, fn, tp = (int(rows[k][lo:hi].sum()) for k in ("tn", "fp", "fn", "tp"))
        m = confusion_metrics(tp, fp, tn, fn)
        out.append({"band": [lo / SCORE_RESOLUTION, min(hi / SCORE_RESOLUTION, 1.0)],
                    "labeled": m["count"], "false_positives": fp, "false_negatives": fn,
                    "error_rate": None if m["accuracy"] is None else 1 - m["accuracy"]})
    totals = confusion_metrics(*(int(rows[k].sum()) for k in ("tp", "fp", "tn", "fn")))
    doc = {"name": name, "version": version, "window_s": window_s, "bands": out,
           "total": totals}
    emit(as_json, doc, lambda: f"{name} v{version}, last {format_duration(window_s)}: "
         f"{totals['fp']} false positives, {totals['fn']} false negatives in "
         f"{totals['count']} labeled\n\n" + table(
             ["score band", "labeled", "false pos", "false neg", "error rate"],
             [[f"{b['band'][0]:.2f}-{b['band'][1]:.2f}", b["labeled"], b["false_positives"],
               b["false_negatives"], pct(b["error_rate"])] for b in out]))


@click.command("dead-letters")
@click.option("--model", metavar="M", help="Only this model.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@pass_app
def dead_letters(app: App, model: str | None, limit: int, as_json: bool) -> None:
    """Events rejected by ingest, newest first, with the reason and the original event."""
    letters = deadletters.read(app.redis, app.registry.model_names(), model, limit)
    counts = deadletters.counts(app.redis, [model] if model else app.registry.model_names())
    emit(as_json, {"dead_letters": letters, "counts": counts}, lambda: table(
        ["at", "model", "batch", "index", "reason"],
        [[time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(x["at"])), x["model"],
          (x["batch_id"] or "")[:24],
          f"all {x.get('events') or ''}".strip() if x.get("summary") else x["index"],
          x["reason"]] for x in letters])
        if letters else "no dead letters")


def register(group: click.Group) -> None:
    for command in (performance_summary, performance_details, data_sufficiency,
                    validate_ground_truth, analyze_errors, dead_letters):
        group.add_command(command)

