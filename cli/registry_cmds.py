"""Registry commands: register models, read and change their configuration, audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlops_tasks.errors import NotFoundError, ValidationError
from mlops_tasks.registry import ModelConfig, builtin_models, catalogue_entry
from mlops_tasks.registry.config import parse_assignment, validate_model_name
from mlops_tasks.registry.drift import changed_fields, drift_report, flatten
from mlops_tasks.registry.files import load_model_file
from mlops_tasks.registry.limits import quote, shorten

from .context import App, change_options, json_option, pass_app
from .output import emit, fmt, table

if TYPE_CHECKING:
    from mlops_tasks.registry.audit import AuditEntry

def model_row(m: dict[str, Any]) -> list[Any]:
    cfg = m["config"]
    deps = m["deployments"]
    return [m["name"], m["version"], m["revision"], cfg["decision_threshold"],
            cfg["accuracy_threshold"], cfg["severity"], cfg["enabled"],
            deps["staging"]["version"] if deps["staging"] else None,
            deps["production"]["version"] if deps["production"] else None]


MODEL_HEADERS = ["name", "version", "rev", "decision", "alert below", "severity", "enabled",
                 "staging", "production"]


def config_lines(m: dict[str, Any]) -> str:
    cfg = m["config"]
    t = cfg["tuning"]
    lines = [
        f"{m['display_name']} ({m['name']} v{m['version']}, revision {m['revision']})",
        f"  decision_threshold   {cfg['decision_threshold']:g}",
        f"  accuracy_threshold   {cfg['accuracy_threshold']:g} ({cfg['severity']})",
        f"  enabled              {fmt(cfg['enabled'])}",
        (f"  tuning               {t['parameter']} {t['min']:g}-{t['max']:g} "
         f"step {t['step']:g}, window {t['window_s']}s, metric {t['metric']}, "
         f"{'on' if t['enabled'] else 'off'}"),
    ]
    for key, value in sorted(cfg["params"].items()):
        lines.append(f"  {'params.' + key:<20} {fmt(value)}")
    lines.append(f"  updated              {m['updated_at']} by {m['updated_by']}")
    for env, dep in m["deployments"].items():
        where = (f"v{dep['version']} since {dep['deployed_at']} by {dep['deployed_by']}"
                 if dep else "not deployed")
        lines.append(f"  {env:<20} {where}")
    return "\n".join(lines)


@click.command("list-models")
@json_option
@pass_app
def list_models(app: App, as_json: bool) -> None:
    """List all registered models (version shown: production's, else the latest)."""
    models = [app.registry.describe(n) for n in app.registry.model_names()]
    emit(as_json, {"models": models},
         lambda: table(MODEL_HEADERS, [model_row(m) for m in models]) if models
         else "no models registered (run `mlops register-all-models`)")


@click.command("register-model")
@click.argument("name")
@click.option("--version", "version", metavar="V", help="Semantic version to register.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Model definition in JSON or YAML.")
@change_options
@json_option
@pass_app
def register_model(app: App, name: str, version: str | None, config_file: Path | None,
                   actor: str | None, approved_by: str | None, as_json: bool) -> None:
    """Register a model version.

    A built-in model takes its configuration from the catalogue; any other model needs --config.
    A new version of an existing model without --config starts from the latest version's
    current configuration. The file is read and checked before Redis is touched.
    """
    validate_model_name(name)
    entry = catalogue_entry(app.settings, name)
    display_name = entry.display_name if entry else None
    description = entry.description if entry else ""
    config: ModelConfig | None = None
    if config_file is not None:
        doc = load_model_file(config_file)
        if doc.name not in (None, name):
            raise ValidationError(f"name: {shorten(config_file, 200)} defines {quote(doc.name)}, "
                                  f"not {quote(name)}")
        version = version or doc.version or "1.0.0"
        config = ModelConfig.from_dict(doc.config)
        display_name = doc.display_name or display_name
        description = doc.description or description
    reg = app.registry
    if config is None:
        if name in reg.model_names():
            if version is None:
                raise ValidationError(
                    f"--version: {name} is already registered; name the new version to add")
            config = ModelConfig.from_dict(reg.current(name, reg.latest_version(name))["config"])
        elif entry is not None:
            version = version or entry.version
            config = entry.config
        else:
            raise NotFoundError(f"{name!r} is not a built-in model; give its definition "
                                f"with --config FILE")
    if version is None:  # not reached: every branch above names the version or raises
        raise ValidationError(f"--version: name the version of {name} to register")
    reg.register(name, version, config, actor=app.actor(actor), display_name=display_name,
                 description=description, builtin=entry is not None, approved_by=approved_by)
    model = reg.describe(name, version)
    emit(as_json, model, f"{model['display_name']} ({name} v{version}) registered")


@click.command("register-all-models")
@change_options
@json_option
@pass_app
def register_all_models(app: App, actor: str | None, approved_by: str | None,
                        as_json: bool) -> None:
    """Register the built-in catalogue (n1-detector, waf-behavioral, queue-anomaly).

    Versions already registered are left as they are."""
    who = app.actor(actor)
    results = []
    for entry in builtin_models(app.settings):
        res = app.registry.register(entry.name, entry.version, entry.config, actor=who,
                                    display_name=entry.display_name,
                                    description=entry.description, builtin=True, exist_ok=True,
                                    approved_by=approved_by)
        results.append({"name": entry.name, "display_name": entry.display_name,
                        "version": entry.version,
                        "status": "registered" if res["created"] else "already registered"})
    emit(as_json, {"models": results},
         lambda: "\n".join(f"- {r['display_name']} ({r['name']} v{r['version']}) {r['status']}"
                           for r in results))


@click.command("show-config")
@click.argument("name")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@click.option("--env", type=click.Choice(["staging", "production"]),
              help="Show the version deployed to this environment.")
@click.option("--history", is_flag=True, help="Also list every revision of the version.")
@json_option
@pass_app
def show_config(app: App, name: str, version: str | None, env: str | None, history: bool,
                as_json: bool) -> None:
    """Show a model's configuration."""
    model = app.registry.describe(name, version, env)
    revisions = app.registry.revisions(name, model["version"]) if history else None
    if revisions is not None:
        model["revisions"] = revisions

    def human() -> str:
        out = config_lines(model)
        if revisions:
            out += "\n\n" + table(
                ["revision", "created", "actor", "action", "decision", "reason"],
                [[r["revision"], r["created_at"], r["actor"], r["action"],
                  r["config"]["decision_threshold"], r.get("reason")] for r in revisions])
        return out
    emit(as_json, model, human)


@click.command("update-config")
@click.argument("name")
@click.option("--set", "assignments", multiple=True, required=True, metavar="KEY=VALUE",
              help="Field to change, by dotted path: decision_threshold=0.7, tuning.step=0.1, "
                   "params.timeout_ms=3000. Repeatable.")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@click.option("--reason", metavar="TEXT", help="Why, recorded in the audit trail.")
@change_options
@json_option
@pass_app
def update_config(app: App, name: str, assignments: tuple[str, ...], version: str | None,
                  reason: str | None, actor: str | None, approved_by: str | None,
                  as_json: bool) -> None:
    """Change configuration fields, writing a new revision."""
    changes = [parse_assignment(a) for a in assignments]
    result = app.registry.set_config(name, actor=app.actor(actor), version=version,
                                     changes=changes, approved_by=approved_by, reason=reason)
    _emit_revision(app, name, result, as_json)


def _emit_revision(app: App, name: str, result: dict[str, Any], as_json: bool) -> None:
    model = app.registry.describe(name, result["version"])
    model["changed"] = result["changed"]
    model["previous_config"] = result["before"]
    if "restored_revision" in result:
        model["restored_revision"] = result["restored_revision"]
    if not result["changed"]:
        human = f"{name} v{result['version']}: no change (revision {model['revision']})"
    else:
        human = f"{name} v{result['version']}: revision {model['revision']} written\n" + \
            config_lines(model)
    emit(as_json, model, human)


@click.command("rollback-config")
@click.argument("name")
@click.option("--to-revision", type=click.IntRange(min=1), metavar="N",
              help="Revision to restore (default: the previous one).")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@change_options
@json_option
@pass_app
def rollback_config(app: App, name: str, to_revision: int | None, version: str | None,
                    actor: str | None, approved_by: str | None, as_json: bool) -> None:
    """Restore an earlier configuration revision as a new revision."""
    result = app.registry.rollback_config(name, actor=app.actor(actor), version=version,
                                          to_revision=to_revision, approved_by=approved_by)
    _emit_revision(app, name, result, as_json)


@click.command("show-thresholds")
@json_option
@pass_app
def show_thresholds(app: App, as_json: bool) -> None:
    """Decision and alert thresholds of every model, with its tuning range."""
    models = [app.registry.describe(n) for n in app.registry.model_names()]
    rows = []
    for m in models:
        c = m["config"]
        t = c["tuning"]
        rows.append({"name": m["name"], "version": m["version"], "revision": m["revision"],
                     "decision_threshold": c["decision_threshold"],
                     "accuracy_threshold": c["accuracy_threshold"], "severity": c["severity"],
                     "tuning": t})
    emit(as_json, {"models": rows}, lambda: table(
        ["name", "version", "rev", "decision", "alert below", "severity", "tunes", "range"],
        [[r["name"], r["version"], r["revision"], r["decision_threshold"],
          r["accuracy_threshold"], r["severity"], r["tuning"]["parameter"],
          f"{r['tuning']['min']:g}-{r['tuning']['max']:g} step {r['tuning']['step']:g}"]
         for r in rows]))


@click.command("update-threshold")
@click.argument("name")
@click.option("--accuracy", type=float, metavar="X", help="Alert when accuracy falls below X.")
@click.option("--decision", type=float, metavar="X", help="Decision threshold on the score.")
@click.option("--version", metavar="V", help="Version (default: production's, else latest).")
@click.option("--reason", metavar="TEXT", help="Why, recorded in the audit trail.")
@change_options
@json_option
@pass_app
def update_threshold(app: App, name: str, accuracy: float | None, decision: float | None,
                     version: str | None, reason: str | None, actor: str | None,
                     approved_by: str | None, as_json: bool) -> None:
    """Change the alert (--accuracy) or decision (--decision) threshold."""
    changes: list[tuple[str, Any]] = []
    if accuracy is not None:
        changes.append(("accuracy_threshold", accuracy))
    if decision is not None:
        changes.append(("decision_threshold", decision))
    if not changes:
        raise click.UsageError("give --accuracy X, --decision X or both")
    result = app.registry.set_config(name, actor=app.actor(actor), version=version,
                                     changes=changes, action="update-threshold",
                                     approved_by=approved_by, reason=reason)
    _emit_revision(app, name, result, as_json)


@click.command("config-drift-report")
@json_option
@pass_app
def config_drift(app: App, as_json: bool) -> None:
    """Differences between each environment's deployed configuration, the version's registered
    configuration (revision 1) and the catalogue defaults."""
    report = drift_report(app.registry, builtin_models(app.settings))
    rows = [[item["name"], item["env"], item["version"], item["revision"], item["status"],
             d["field"] if d else None, d["deployed"] if d else None,
             d["registered"] if d else None, d["default"] if d else None]
            for item in report for d in item["differences"] or [None]]
    emit(as_json, {"models": report}, lambda: table(
        ["name", "env", "version", "rev", "status", "field", "deployed", "registered",
         "default"], rows) if rows else "no deployments")


@click.command("audit-log")
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@pass_app
def audit_log(app: App, name: str | None, limit: int, as_json: bool) -> None:
    """Who changed what and when, newest first."""
    entries = app.registry.audit_log(name, limit)

    def summary(e: AuditEntry) -> str:
        if e.action in ("deploy", "rollback"):
            return f"{e.env}: {e.before or '-'} -> {e.after}"
        if e.before is None:
            return f"revision {e.revision}"
        before, after = flatten(e.before), flatten(e.after)
        return f"revision {e.revision}: " + ", ".join(
            f"{k} {fmt(before.get(k))} -> {fmt(after.get(k))}"
            for k in changed_fields(e.before, e.after))
    emit(as_json, {"entries": [e.to_dict() for e in entries]}, lambda: table(
        ["at", "model", "version", "action", "actor", "approved by", "change"],
        [[e.at, e.model, e.version, e.action, e.actor, e.approved_by, summary(e)]
         for e in entries]) if entries else "no audit entries")


def register(group: click.Group) -> None:
    for command in (list_models, register_model, register_all_models, show_config,
                    update_config, rollback_config, show_thresholds, update_threshold,
                    config_drift, audit_log):
        group.add_command(command)
