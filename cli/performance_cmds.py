"""Performance commands: windowed metrics, label health, error analysis, dead letters."""

from __future__ import annotations

import click

from mlops_tasks import deadletters, reports
from mlops_tasks.durations import format_duration, parse_duration
from mlops_tasks.timefmt import iso

from .context import App, json_option, pass_app
from .output import emit, fmt, metrics_table, pct, table


@click.command("performance-summary")
@json_option
@pass_app
def performance_summary(app: App, as_json: bool) -> None:
    """Current metrics of every model (production's version, else the latest)."""
    models = [m.to_dict() for m in reports.performance_summary(app.services)]

    def human() -> str:
        parts = []
        for m in models:
            parts.append(f"{m['name']} v{m['version']}  (pending labels {m['pending_labels']}, "
                         f"orphan labels {m['orphan_labels']}, dead letters {m['dead_letters']})")
            parts.append(metrics_table(m["windows"]))
        return "\n\n".join(parts) or "no models registered"
    emit(as_json, {"models": models}, human)


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
    doc = reports.performance_details(app.services, name, version, recent, days).to_dict()

    def human() -> str:
        out = f"{name} v{doc['version']}\n\n" + metrics_table(doc["windows"])
        out += "\n\n" + table(["day", "predictions", "labeled", "accuracy", "f1", "fpr"],
                              [[d["day"], d["predictions"], d["count"], pct(d["accuracy"]),
                                pct(d["f1"]), pct(d["false_positive_rate"])]
                               for d in doc["daily"]])
        return out
    emit(as_json, doc, human)


@click.command("data-sufficiency")
@click.argument("name")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@json_option
@pass_app
def data_sufficiency(app: App, name: str, version: str | None, as_json: bool) -> None:
    """Labeled counts per window against what tuning, monitoring and significance tests need."""
    doc = reports.data_sufficiency(app.services, name, version).to_dict()
    req = doc["requirements"]

    def enough(ok: bool | None) -> str:
        return "-" if ok is None else "enough" if ok else "too few"
    emit(as_json, doc, lambda: (
        f"{name} v{doc['version']}: tuning needs {req['tuning_min_samples']} labeled "
        f"predictions, monitoring {req['monitoring_min_samples']}; detecting a 5% accuracy "
        f"drop from {pct(req['reference_accuracy'])} (p<0.05, power 0.8) needs "
        f"{fmt(req['detect_5pct_drop_samples'])} per window\n\n" + table(
            ["window", "labeled", "tuning", "monitoring", "5% drop"],
            [[w["window"], w["labeled"], enough(w["enough_for_tuning"]),
              enough(w["enough_for_monitoring"]), enough(w["enough_to_detect_5pct_drop"])]
             for w in doc["windows"]])))


@click.command("validate-ground-truth")
@click.argument("name")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@json_option
@pass_app
def validate_ground_truth(app: App, name: str, version: str | None, as_json: bool) -> None:
    """Label coverage, label delays, orphans and predictions still waiting for a label."""
    doc = reports.validate_ground_truth(app.services, name, version).to_dict()

    def human() -> str:
        d = doc["label_delay_s"]
        out = table(["window", "predictions", "labeled", "coverage"],
                    [[k, v["predictions"], v["labeled"], pct(v["coverage"])]
                     for k, v in doc["coverage"].items()])
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
    doc = reports.analyze_errors(app.services, name, version, window_s, bands).to_dict()
    totals = doc["total"]
    emit(as_json, doc, lambda: f"{name} v{doc['version']}, last {format_duration(window_s)}: "
         f"{totals['fp']} false positives, {totals['fn']} false negatives in "
         f"{totals['count']} labeled\n\n" + table(
             ["score band", "labeled", "false pos", "false neg", "error rate"],
             [[f"{b['band'][0]:.2f}-{b['band'][1]:.2f}", b["labeled"], b["false_positives"],
               b["false_negatives"], pct(b["error_rate"])] for b in doc["bands"]]))


@click.group("dead-letters", invoke_without_command=True)
@click.option("--model", metavar="M", help="Only this model.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@click.pass_context
@pass_app
def dead_letters(app: App, ctx: click.Context, model: str | None, limit: int,
                 as_json: bool) -> None:
    """Events rejected by ingest, newest first, with the reason and the original event.

    They are the only place the metadata of a client's events is kept, for
    MLOPS_DEAD_LETTER_RETENTION_DAYS; `mlops dead-letters purge` deletes them now."""
    if ctx.invoked_subcommand is not None:
        return
    letters = deadletters.read(app.redis, app.registry.model_names(), model, limit)
    counts = deadletters.counts(app.redis, [model] if model else app.registry.model_names())
    emit(as_json, {"dead_letters": letters, "counts": counts}, lambda: table(
        ["at", "model", "batch", "index", "reason"],
        [[iso(x["at"]), x["model"], (x["batch_id"] or "")[:24],
          f"all {x.get('events') or ''}".strip() if x.get("summary") else x["index"],
          x["reason"]] for x in letters])
        if letters else "no dead letters")


@dead_letters.command("purge")
@click.option("--model", metavar="M", help="Only this model (default: every model).")
@json_option
@pass_app
def purge_dead_letters(app: App, model: str | None, as_json: bool) -> None:
    """Delete the dead letters (and the client metadata they hold) of a model or of all."""
    doc = deadletters.purge(app.redis, app.registry.model_names(), model,
                            actor=app.actor(None)).to_dict()
    emit(as_json, doc, lambda: "removed " + (", ".join(
        f"{n} dead letters of {name}" for name, n in sorted(doc["removed"].items()))
        or "no dead letters"))


def register(group: click.Group) -> None:
    for command in (performance_summary, performance_details, data_sufficiency,
                    validate_ground_truth, analyze_errors, dead_letters):
        group.add_command(command)
