"""Scheduler commands: status and health of beat and the scheduled jobs, cleanup."""

from __future__ import annotations

import sys

import click

from mlops_tasks import health
from mlops_tasks.durations import parse_duration
from mlops_tasks.maintenance.cleanup import cleanup

from .context import EXIT_FAILURE, App, json_option, pass_app
from .output import emit, fmt, table


@click.group("scheduler")
def scheduler_group() -> None:
    """Beat and the scheduled jobs."""


STATUS_HELP = "Every job's last run, success rate and next run; beat's leader and heartbeat."
HEALTH_HELP = ("Exit 1 when beat's heartbeat is stale, a job missed two intervals or failed 3 "
               "times in a row; say which (and what is only degraded, such as a job that failed "
               "once).")


def show_status(app: App, as_json: bool) -> None:
    """`scheduler status` and its alias `scheduler-status`."""
    status = health.scheduler_status(app.redis, app.settings).to_dict()

    def human() -> str:
        b = status["beat"]
        head = (f"beat: {'alive' if b['alive'] else 'NOT RUNNING'}; leader {b['leader'] or '-'}"
                f", last heartbeat {b['last_heartbeat_at'] or '-'}, "
                f"{len(b['instances'])} instance(s)")
        return head + "\n\n" + table(
            ["job", "every", "last run", "last success", "duration", "failures", "success",
             "next run"],
            [[j["name"], f"{j['interval_s']}s", j["last_run_at"], j["last_success_at"],
              fmt(j["last_duration_s"]), j["consecutive_failures"],
              "-" if j["success_rate"] is None else f"{j['success_rate']:.0%}",
              j["next_run_at"]] for j in status["jobs"]])
    emit(as_json, status, human)


def show_health(app: App, as_json: bool) -> None:
    """`scheduler health` and its alias `scheduler-health`."""
    verdict = health.check_health(app.redis, app.settings).verdict
    lines = ([f"unhealthy: {p}" for p in verdict.problems]
             + [f"degraded: {w}" for w in verdict.warnings])
    emit(as_json, verdict.to_dict(), "\n".join(lines) or "scheduler healthy")
    if not verdict.healthy:
        sys.exit(EXIT_FAILURE)


@scheduler_group.command("status", help=STATUS_HELP)
@json_option
@pass_app
def status_cmd(app: App, as_json: bool) -> None:
    show_status(app, as_json)


@scheduler_group.command("health", help=HEALTH_HELP)
@json_option
@pass_app
def health_cmd(app: App, as_json: bool) -> None:
    show_health(app, as_json)


@scheduler_group.command("restart")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=60.0,
              show_default=True, help="Seconds to wait for every pool and beat to come back.")
@json_option
@pass_app
def restart_cmd(app: App, timeout_s: float, as_json: bool) -> None:
    """Replace every worker pool's processes and re-execute every beat, losing no message.

    Pool children finish their task first; beat resumes from the schedule in Redis. Exit 1
    when something was not restarted (a solo pool, a timeout) or nothing is running."""
    from mlops_tasks.restart import restart  # noqa: PLC0415 - imports Celery's app
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import

    report = restart(celery_app.control, app.redis, app.settings, timeout_s)

    def human() -> str:
        rows = [["worker", w.worker, w.pool.rsplit(":", 1)[0].rsplit(".", 1)[-1],
                 "yes" if w.restarted else "no",
                 w.detail or f"{len(w.children_before)} -> {len(w.children_after)} children"]
                for w in report.workers]
        rows += [["beat", f"{b.instance}@{b.host} (pid {b.pid})", b.role,
                  "yes" if b.restarted else "no", b.detail or f"now {b.new_instance}"]
                 for b in report.beats]
        if not rows:
            return "nothing to restart: no worker answered and no beat is running"
        return table(["what", "process", "pool/role", "restarted", "detail"], rows)
    emit(as_json, report.to_dict(), human)
    if not report.ok:
        sys.exit(EXIT_FAILURE)


@click.command("scheduler-status", help=f"Alias of `scheduler status`: {STATUS_HELP}")
@json_option
@pass_app
def scheduler_status_alias(app: App, as_json: bool) -> None:
    show_status(app, as_json)


@click.command("scheduler-health", help=f"Alias of `scheduler health`: {HEALTH_HELP}")
@json_option
@pass_app
def scheduler_health_alias(app: App, as_json: bool) -> None:
    show_health(app, as_json)


@click.command("cleanup-old-data")
@click.option("--older-than", default="90days", show_default=True,
              help="Delete what is older than this: 90days, 12h, 2w.")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@json_option
@pass_app
def cleanup_old_data(app: App, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Delete old performance data, expired pending labels, old dead letters and history.

    Never touches the registry, deployments or the audit trail."""
    report = cleanup(app.services, parse_duration(older_than, "--older-than"), dry_run)
    verb = "would delete" if dry_run else "deleted"
    emit(as_json, report.to_dict(), lambda: f"{verb} (older than {report.cutoff}):\n" + table(
        ["what", "count"], [[k, v] for k, v in report.deleted.items()]))


def register(group: click.Group) -> None:
    group.add_command(scheduler_group)
    group.add_command(scheduler_status_alias)
    group.add_command(scheduler_health_alias)
    group.add_command(cleanup_old_data)
