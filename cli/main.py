"""Entry point of the ``mlops`` command: the root group, lazy command loading and one-line
error handling.

A command's module is imported only when that command runs (or when ``--help`` lists them), so
``mlops --version`` and a simple command start without loading what other commands need.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from mlops_tasks import __version__
from mlops_tasks.errors import MlopsError, RedisUnavailableError

from .context import EXIT_FAILURE, App
from .output import safe

# Every command: the module of cli/ whose register() adds it, and its one-line help (what
# `mlops --help` lists without importing any command module). A new command is a function in its
# module plus one line here; tests/test_cli_startup.py checks that the two agree.
COMMANDS: dict[str, tuple[str, str]] = {
    "register-model": ("registry_cmds", "Register a model version."),
    "register-all-models": ("registry_cmds", (
        "Register the built-in catalogue (n1-detector, waf-behavioral, queue-anomaly).")),
    "list-models": ("registry_cmds", (
        "List all registered models (version shown: production's, else the latest).")),
    "show-config": ("registry_cmds", "Show a model's configuration."),
    "show-thresholds": ("registry_cmds", (
        "Decision and alert thresholds of every model, with its tuning range.")),
    "update-config": ("registry_cmds", "Change configuration fields, writing a new revision."),
    "update-threshold": ("registry_cmds", (
        "Change the alert (--accuracy) or decision (--decision) threshold.")),
    "rollback-config": ("registry_cmds", (
        "Restore an earlier configuration revision as a new revision.")),
    "config-drift-report": ("registry_cmds", (
        "Differences between each environment's deployed configuration, the version's "
        "registered configuration (revision 1) and the catalogue defaults.")),
    "audit-log": ("registry_cmds", "Who changed what and when, newest first."),
    "deploy": ("deploy_cmds", "Deploy a registered version to staging or production."),
    "deploy-to-production": ("deploy_cmds", (
        "Deploy the latest version of the named models (or --all) to production.")),
    "deployment-status": ("deploy_cmds", (
        "Where each version of a model is deployed, and the deployment history.")),
    "list-production-models": ("deploy_cmds", (
        "Models deployed to production, with when and by whom.")),
    "rollback": ("deploy_cmds", "Redeploy an earlier version."),
    "rollback-version": ("deploy_cmds", (
        "Deploy the registered version just below the one deployed now.")),
    "performance-summary": ("performance_cmds", (
        "Current metrics of every model (production's version, else the latest).")),
    "performance-details": ("performance_cmds", (
        "Windows, the last N outcomes and the daily history of one model.")),
    "data-sufficiency": ("performance_cmds", (
        "Labeled counts per window against what tuning, monitoring and significance tests need.")),
    "validate-ground-truth": ("performance_cmds", (
        "Label coverage, label delays, orphans and predictions still waiting for a label.")),
    "analyze-errors": ("performance_cmds", "False positives and false negatives by score band."),
    "dead-letters": ("performance_cmds", (
        "Events rejected by ingest, newest first, with the reason and the original event.")),
    "check-degradation": ("monitoring_cmds", (
        "Run degradation detection now, here (for production models, or NAME).")),
    "verify-degradation": ("monitoring_cmds", (
        "Re-check with Fisher's exact test and a bootstrap interval: real, or a false alarm?")),
    "set-baseline": ("monitoring_cmds", (
        "Set the baseline that degradation detection compares with.")),
    "degradation-report": ("monitoring_cmds", "Degradation and drift incidents over a period."),
    "daily-summary": ("monitoring_cmds", (
        "The last 24 hours of every model: metrics, alerts, monitoring status.")),
    "performance-trends": ("monitoring_cmds", "Daily metrics with a sparkline per metric."),
    "compare-versions": ("monitoring_cmds", (
        "Metrics of two versions side by side, with the significance of the accuracy "
        "difference.")),
    "alerts": ("alert_cmds",
               "Alerts fired, resolved or announced recently, and those still firing."),
    "silence": ("alert_cmds", ("Mute the alerts of a model or system subject (a scheduled "
                               "job's name, registry), or one kind of them, for a while.")),
    "silences": ("alert_cmds", "Silences in force (or all of them)."),
    "unsilence": ("alert_cmds", "Remove a silence."),
    "notifications": ("alert_cmds", (
        "What was sent to whom: every notification and delivery attempt, newest first.")),
    "auto-tuning-history": ("tuning_cmds", "Tuning runs, newest first, each with its whole grid."),
    "auto-tuning-report": ("tuning_cmds", (
        "Runs, applications, average improvement and stagnation per model.")),
    "improvement-recommendations": ("tuning_cmds", (
        "What to do next for each production model: tune, retrain, collect labels, widen range.")),
    "run": ("run_cmds", "Run a scheduled job now, through its Celery queue."),
    "scheduler": ("scheduler_cmds", "Beat and the scheduled jobs."),
    "cleanup-old-data": ("scheduler_cmds", (
        "Delete old performance data, expired pending labels, old dead letters and history.")),
    "scheduler-status": ("scheduler_cmds", (
        "Alias of `scheduler status`: Every job's last run, success rate and next run; beat's "
        "leader and heartbeat.")),
    "scheduler-health": ("scheduler_cmds", (
        "Alias of `scheduler health`: Exit 1 when beat's heartbeat is stale, a job missed two "
        "intervals or failed 3 times in a row; say which (and what is only degraded, such as a "
        "job that failed once).")),
    "serve": ("serve_cmds", (
        "Serve /health/live, /health/ready, /health, /health/<component>, /metrics and the "
        "dashboard page / (?span=day|week|month).")),
    "verify-systems": ("verify_cmds", (
        "Check Redis, the broker, each worker pool, beat, the registry catalogue and the "
        "metrics pipeline (a synthetic event through the real path); exit 1 if any check fails.")),
    "worker": ("worker_cmds", "Start a Celery worker for mlops-tasks."),
    "beat": ("worker_cmds", (
        "Start the scheduler (celery beat with the project's schedule and leader lock).")),
    "flower": ("flower_cmds", (
        "Start Flower with HTTP basic authentication from MLOPS_FLOWER_BASIC_AUTH.")),
    "up": ("up_cmds", (
        "Start Redis, the worker pools, beat, Flower and serve here; Ctrl-C stops them all.")),
    "simulate": ("simulate_cmds", (
        "Generate realistic labeled inputs for each detector, run the real detectors on them "
        "and report predictions, then the labels, through the client (registering and "
        "deploying the built-in models that are missing).")),
    "demo": ("demo_cmds", (
        "The whole loop in about two minutes: start the stack (Redis, workers, beat, Flower, "
        "serve) on a time-compressed schedule, send realistic traffic through the three "
        "reference detectors, drift one, and show each step: events, metrics, the degradation "
        "alert, auto-tuning applying a threshold the detector reads back, and accuracy "
        "recovering; then stop everything.")),
    "cache": ("system_cmds", "Redis holding the registry and metrics."),
    "config": ("system_cmds", "Inspect the configuration."),
    "redis": ("system_cmds", "The embedded Redis used when REDIS_URL is not set."),
}


def module_commands(module: str) -> dict[str, click.Command]:
    """The commands a cli/ module registers."""
    group = click.Group()
    importlib.import_module(f"{__package__}.{module}").register(group)
    return dict(group.commands)


class MlopsGroup(click.Group):
    """Loads command modules on demand; turns every expected error into ``error: <one line>``
    on stderr and exit code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 - click's signature
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context,  # noqa: ARG002 - click's signature
                    cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        return None if entry is None else module_commands(entry[0]).get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from the table: no command module is imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _shorten(COMMANDS[name][1], limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            _fail(str(exc))
        except Exception as exc:
            message = _connection_error(ctx, exc)
            if message is None:
                raise
            _fail(message)


def _shorten(text: str, limit: int) -> str:
    """Click's way of fitting a short help to the width: cut at a word, then "..."."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 3].rsplit(" ", 1)[0]
    return f"{cut}..."


def _connection_error(ctx: click.Context, exc: Exception) -> str | None:
    """One line for a broker or Redis failure; None for anything else. Checked by module, so
    neither kombu nor redis is imported for commands that never load them."""
    kombu_errors = sys.modules.get("kombu.exceptions")
    if kombu_errors is not None and isinstance(exc, kombu_errors.OperationalError):
        return f"broker unreachable: {str(exc).splitlines()[0]}"
    redis_errors = sys.modules.get("redis.exceptions")
    if redis_errors is not None and isinstance(exc, redis_errors.NoPermissionError):
        from mlops_tasks import acl  # noqa: PLC0415 - only on failure

        app = ctx.find_object(App)
        user = acl.user_of(app.resolved_redis_url if app else None)
        return str(acl.denied(user, f"run `mlops {ctx.invoked_subcommand or ctx.info_name}`",
                              exc))
    if redis_errors is not None and isinstance(exc, redis_errors.RedisError):
        from mlops_tasks.settings import mask_url  # noqa: PLC0415 - only on failure

        app = ctx.find_object(App)
        url = app.resolved_redis_url if app else None
        where = mask_url(url) if url else "Redis"
        return str(RedisUnavailableError(f"{where}: {str(exc).splitlines()[0]}"))
    return None


def _fail(message: str) -> None:
    click.echo(f"error: {safe(message)}", err=True)
    sys.exit(EXIT_FAILURE)


@click.group(cls=MlopsGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
@click.version_option(__version__, prog_name="mlops")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Monitor, alert on and auto-tune ML detectors in production.

    Settings come from the environment (see `mlops config check`). Without REDIS_URL an
    embedded Redis is started in MLOPS_DATA_DIR and reused by later commands.
    """
    ctx.ensure_object(App)


def main() -> None:
    cli(prog_name="mlops")


if __name__ == "__main__":
    main()
