"""Scheduler commands: status and health of beat and the four jobs, cleanup, verify-systems."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from mlops_tasks import keys
from mlops_tasks.durations import parse_duration
from mlops_tasks.jobs import JOBS, facts
from mlops_tasks.maintenance.cleanup import cleanup

from .context import EXIT_FAILURE, App, json_option, pass_app
from .output import emit, fmt, table

FAILURES_UNHEALTHY = 3


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _redbeat_last_run(app: App, job: str) -> float | None:
    """When beat last sent the job (celery-redbeat's entry meta)."""
    raw = app.redis.hget(keys.REDBEAT_PREFIX + job, "meta")
    if not raw:
        return None
    from redbeat.decoder import RedBeatJSONDecoder  # noqa: PLC0415 - only needed here

    meta = json.loads(raw, cls=RedBeatJSONDecoder)
    last = meta.get("last_run_at")
    return last.timestamp() if last is not None and last.year > 1 else None


def beat_state(app: App) -> dict[str, Any]:
    client = app.redis
    instance_keys = list(client.scan_iter(match=keys.beat_instance("*"), count=100))
    instances = [json.loads(v) for v in client.mget(instance_keys) if v] if instance_keys else []
    raw = client.get(keys.BEAT_LEADER)
    leader = json.loads(raw) if raw else None
    now = time.time()
    stale_s = max(10.0, 3 * app.settings.beat_max_interval_s)
    alive = leader is not None and now - leader["at"] <= stale_s
    return {"alive": alive,
            "leader": f"{leader['id']}@{leader['host']} (pid {leader['pid']})" if leader else None,
            "last_heartbeat_at": _iso(leader["at"]) if leader else None,
            "leader_started_at": leader["started_at"] if leader else None,
            "stale_after_s": stale_s, "takeover_within_s": app.settings.beat_takeover_s,
            "instances": [{"id": i["id"], "host": i["host"], "pid": i["pid"], "role": i["role"],
                           "last_heartbeat_at": _iso(i["at"])} for i in instances]}


def scheduler_status(app: App) -> dict[str, Any]:
    jobs = []
    for job in JOBS:
        f = facts(app.redis, job.name)
        interval = job.interval_s(app.settings)
        sent = _redbeat_last_run(app, job.name)
        last = sent or f["last_run_at"]
        jobs.append({
            "name": job.name, "task": job.task, "queue": job.queue, "interval_s": interval,
            "last_run_at": _iso(f["last_run_at"]), "last_success_at": _iso(f["last_success_at"]),
            "last_duration_s": f["last_duration_s"],
            "consecutive_failures": f["consecutive_failures"],
            "success_rate": f["success_rate"], "runs": f["runs"],
            "last_error": f["last_error"], "last_summary": f["last_summary"],
            "next_run_at": _iso(last + interval) if last else None,
            "_last_run_ts": f["last_run_at"]})
    return {"jobs": jobs, "beat": beat_state(app)}


def health_problems(app: App, status: dict[str, Any]) -> list[str]:
    problems = []
    beat = status["beat"]
    now = time.time()
    if not beat["alive"]:
        problems.append("beat: no leader heartbeat in the last "
                        f"{beat['stale_after_s']:g}s (is `mlops beat` running?)")
    beat_up_since = beat["leader_started_at"]
    for job in status["jobs"]:
        interval = job["interval_s"]
        last = job["_last_run_ts"]
        if last is not None and now - last > 2 * interval:
            problems.append(f"{job['name']}: last ran {now - last:.0f}s ago, more than two "
                            f"intervals of {interval}s")
        elif last is None and beat_up_since is not None and now - beat_up_since > 2 * interval:
            problems.append(f"{job['name']}: never ran although beat has been up for "
                            f"{now - beat_up_since:.0f}s (interval {interval}s)")
        if job["consecutive_failures"] >= FAILURES_UNHEALTHY:
            problems.append(f"{job['name']}: failed {job['consecutive_failures']} times in a row"
                            f" (last error: {job['last_error']})")
    return problems


def _public(status: dict[str, Any]) -> dict[str, Any]:
    return {**status, "jobs": [{k: v for k, v in j.items() if not k.startswith("_")}
                               for j in status["jobs"]]}


@click.group("scheduler")
def scheduler_group() -> None:
    """Beat and the four scheduled jobs."""


@scheduler_group.command("status")
@json_option
@pass_app
def status_cmd(app: App, as_json: bool) -> None:
    """Every job's last run, success rate and next run; beat's leader and heartbeat."""
    status = _public(scheduler_status(app))

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


@scheduler_group.command("health")
@json_option
@pass_app
def health_cmd(app: App, as_json: bool) -> None:
    """Exit 1 when beat's heartbeat is stale, a job missed two intervals or failed 3 times in a
    row; say which."""
    status = scheduler_status(app)
    problems = health_problems(app, status)
    emit(as_json, {"healthy": not problems, "problems": problems},
         "\n".join(f"unhealthy: {p}" for p in problems) or "scheduler healthy")
    if problems:
        sys.exit(EXIT_FAILURE)


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
    emit(as_json, report, lambda: f"{verb} (older than {report['cutoff']}):\n" + table(
        ["what", "count"], [[k, v] for k, v in report["deleted"].items()]))


def register(group: click.Group) -> None:
    group.add_command(scheduler_group)
    group.add_command(cleanup_old_data)

