"""Deployment commands: deploy to staging or production, inspect, roll back."""

from __future__ import annotations

from typing import Any

import click

from mlops_tasks.registry import ENVIRONMENTS

from .context import App, change_options, json_option, pass_app
from .output import emit, table

ENV_CHOICE = click.Choice(list(ENVIRONMENTS))


def _deploy_line(name: str, result: dict[str, Any]) -> str:
    env, version = result["env"], result["version"]
    if not result["changed"]:
        return f"{name} v{version} is already deployed to {env}"
    prev = result["previous"]
    was = f" (was v{prev['version']})" if prev else ""
    return (f"{name} v{version} deployed to {env}{was} at {result['deployed_at']} "
            f"by {result['deployed_by']}")


@click.command("deploy")
@click.argument("name")
@click.option("--version", required=True, metavar="V", help="Registered version to deploy.")
@click.option("--env", required=True, type=ENV_CHOICE, help="Target environment.")
@change_options
@json_option
@pass_app
def deploy(app: App, name: str, version: str, env: str, actor: str | None,
           approved_by: str | None, as_json: bool) -> None:
    """Deploy a registered version to staging or production."""
    result = app.registry.deploy(name, version, env, actor=app.actor(actor),
                                 approved_by=approved_by)
    emit(as_json, dict(result, name=name), _deploy_line(name, result))


@click.command("deploy-to-production")
@click.argument("names", nargs=-1, metavar="NAME...")
@click.option("--all", "all_models", is_flag=True, help="Deploy every registered model.")
@change_options
@json_option
@pass_app
def deploy_to_production(app: App, names: tuple[str, ...], all_models: bool, actor: str | None,
                         approved_by: str | None, as_json: bool) -> None:
    """Deploy the latest version of the named models (or --all) to production."""
    if all_models == bool(names):
        raise click.UsageError("give model names or --all, not both and not neither")
    reg = app.registry
    targets = reg.model_names() if all_models else list(names)
    who = app.actor(actor)
    results = []
    for name in targets:
        result = reg.deploy(name, reg.latest_version(name), "production", actor=who,
                            approved_by=approved_by)
        results.append(dict(result, name=name))
    emit(as_json, {"deployments": results},
         lambda: "\n".join(_deploy_line(r["name"], r) for r in results) or "nothing to deploy")


@click.command("list-production-models")
@json_option
@pass_app
def list_production_models(app: App, as_json: bool) -> None:
    """Models deployed to production, with when and by whom."""
    reg = app.registry
    models = []
    for name in reg.model_names():
        dep = reg.deployment(name, "production")
        if dep:
            model = reg.describe(name, env="production")
            model["deployment"] = dep
            models.append(model)
    emit(as_json, {"models": models}, lambda: "\n".join(
        f"- {m['name']} v{m['version']} (deployed: {m['deployment']['deployed_at']} "
        f"by {m['deployment']['deployed_by']})" for m in models) or "no models in production")


@click.command("deployment-status")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Earlier deployments to list per environment.")
@json_option
@pass_app
def deployment_status(app: App, name: str, limit: int, as_json: bool) -> None:
    """Where each version of a model is deployed, and the deployment history."""
    reg = app.registry
    deployments = reg.deployments(name)
    status: dict[str, Any] = {  # the --json document
        "name": name,
        "versions": reg.versions(name),
        "environments": {
            env: {"current": deployments[env],
                  "history": reg.deploy_history(name, env)[:limit]}
            for env in ENVIRONMENTS},
    }

    def human() -> str:
        rows = []
        for env in ENVIRONMENTS:
            cur = deployments[env]
            if cur:
                rows.append([env, "current", cur["version"], cur["revision"], cur["deployed_at"],
                             cur["deployed_by"], cur.get("approved_by"), cur.get("action")])
            rows.extend([env, "earlier", d["version"], d["revision"], d["deployed_at"],
                         d["deployed_by"], d.get("approved_by"), d.get("action")]
                        for d in status["environments"][env]["history"])
        if not rows:
            return f"{name} is not deployed (versions: {', '.join(status['versions'])})"
        return table(["env", "state", "version", "rev", "deployed at", "by", "approved by",
                      "action"], rows)
    emit(as_json, status, human)


@click.command("rollback")
@click.argument("name")
@click.option("--to-version", metavar="V",
              help="Version to redeploy (default: the one deployed before the current one).")
@click.option("--env", type=ENV_CHOICE, default="production", show_default=True)
@change_options
@json_option
@pass_app
def rollback(app: App, name: str, to_version: str | None, env: str, actor: str | None,
             approved_by: str | None, as_json: bool) -> None:
    """Redeploy an earlier version."""
    result = app.registry.rollback(name, actor=app.actor(actor), env=env, to_version=to_version,
                                   approved_by=approved_by)
    emit(as_json, dict(result, name=name), _deploy_line(name, result))


@click.command("rollback-version")
@click.argument("name")
@click.option("--env", type=ENV_CHOICE, default="production", show_default=True)
@change_options
@json_option
@pass_app
def rollback_version(app: App, name: str, env: str, actor: str | None, approved_by: str | None,
                     as_json: bool) -> None:
    """Deploy the registered version just below the one deployed now."""
    result = app.registry.rollback_version(name, actor=app.actor(actor), env=env,
                                           approved_by=approved_by)
    emit(as_json, dict(result, name=name), _deploy_line(name, result))


def register(group: click.Group) -> None:
    for command in (deploy, deploy_to_production, list_production_models, deployment_status,
                    rollback, rollback_version):
        group.add_command(command)

