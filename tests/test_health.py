"""Health as data: beat state, job staleness and failures, worker liveness, queue depth and the
verdict, called as library functions against a real Redis (and a real Celery worker)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
import redis

from mlops_tasks import health, jobs, keys
from mlops_tasks.health.beat import record_heartbeat
from mlops_tasks.health.workers import PoolLiveness
from mlops_tasks.settings import Settings

from .pipeline_support import Clock, Pipeline

NOW = 1_900_000_000.0
EVERY_POOL = {"events": ("mlops.events",), "monitoring": ("mlops.monitoring",),
              "tuning": ("mlops.tuning",)}


def heartbeat(r: redis.Redis, instance: str, role: str, at: float,
              started_at: float) -> None:
    """What a beat process writes every tick (beat/scheduler.py), leader or standby."""
    doc = {"id": instance, "host": "beat-host", "pid": 4242, "role": role,
           "started_at": started_at, "at": at}
    record_heartbeat(r, doc, 60, leader=role == "leader")


def run_job(r: redis.Redis, job: str, at: float, fail: bool = False) -> None:
    """One run of ``job`` recorded the way workers record it, at ``at`` on a fake clock."""
    clock = Clock()
    clock.now = at
    with contextlib.suppress(RuntimeError), jobs.recorded(r, job, clock=clock):
        if fail:
            raise RuntimeError("registry unreadable")


def every_job_ran(r: redis.Redis, settings: Settings, now: float) -> None:
    for job in jobs.JOBS:
        run_job(r, job.name, now - job.interval_s(settings) / 2)


def test_without_a_beat_heartbeat_beat_is_not_alive(r: redis.Redis, settings: Settings) -> None:
    """Given no beat process, when beat's state is read, then it has no leader and is not
    alive, and the verdict says beat is not running."""
    state = health.beat_state(r, settings, now=NOW)
    assert state.alive is False and state.leader is None and state.heartbeat_age_s is None
    assert state.to_dict() == {"alive": False, "leader": None, "last_heartbeat_at": None,
                               "leader_started_at": None, "stale_after_s": 15.0,
                               "takeover_within_s": 35.0, "instances": []}
    verdict = health.check_health(r, settings, now=NOW).verdict
    assert verdict.status == "unhealthy" and verdict.healthy is False
    assert verdict.problems[0] == ("beat: no leader heartbeat in the last 15s "
                                   "(is `mlops beat` running?)")


def test_beat_state_names_the_leader_and_every_instance(r: redis.Redis,
                                                        settings: Settings) -> None:
    """Given a leader whose heartbeat is 3 s old and a standby, when beat's state is read,
    then the leader, its heartbeat's age and both instances are reported."""
    heartbeat(r, "lead1", "leader", at=NOW - 3, started_at=NOW - 500)
    heartbeat(r, "stand2", "standby", at=NOW - 1, started_at=NOW - 100)
    state = health.beat_state(r, settings, now=NOW)
    assert state.alive is True and state.heartbeat_age_s == pytest.approx(3.0)
    assert state.leader is not None and state.leader.started_at == NOW - 500
    doc = state.to_dict()
    assert doc["leader"] == "lead1@beat-host (pid 4242)"
    assert doc["last_heartbeat_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                     time.gmtime(NOW - 3))
    assert sorted(i["role"] for i in doc["instances"]) == ["leader", "standby"]


def test_a_stale_leader_heartbeat_means_beat_is_down(r: redis.Redis,
                                                     settings: Settings) -> None:
    """Given a leader heartbeat older than three ticks (15 s by default), then beat is not
    alive although the key is still there."""
    heartbeat(r, "lead1", "leader", at=NOW - 16, started_at=NOW - 500)
    assert health.beat_state(r, settings, now=NOW).alive is False


def test_scheduler_status_reads_every_job_of_the_table(r: redis.Redis,
                                                       settings: Settings) -> None:
    """Given a job that succeeded twice and failed once, when the scheduler status is read,
    then every job of jobs.JOBS is listed in order, with that job's facts."""
    name = jobs.JOBS[0].name
    run_job(r, name, NOW - 300)
    run_job(r, name, NOW - 200)
    run_job(r, name, NOW - 100, fail=True)
    status = health.scheduler_status(r, settings, now=NOW)
    assert [j.name for j in status.jobs] == [j.name for j in jobs.JOBS]
    job = status.jobs[0]
    assert job.runs == 3 and job.consecutive_failures == 1
    assert job.success_rate == pytest.approx(2 / 3)
    assert job.last_run_at == NOW - 100 and job.last_success_at == NOW - 200
    assert job.staleness_s(NOW) == 100
    assert job.next_run_at == NOW - 100 + job.interval_s
    assert job.last_error == "RuntimeError: registry unreadable"
    doc = status.to_dict()
    assert list(doc) == ["jobs", "beat"]
    assert list(doc["jobs"][0]) == [
        "name", "task", "queue", "interval_s", "last_run_at", "last_success_at",
        "last_duration_s", "consecutive_failures", "success_rate", "runs", "last_error",
        "last_summary", "next_run_at"]
    assert doc["jobs"][1]["last_run_at"] is None and doc["jobs"][1]["next_run_at"] is None


def test_a_running_beat_with_every_job_on_time_is_healthy(r: redis.Redis,
                                                          settings: Settings) -> None:
    """Given a live leader and every job run within its interval, then the verdict is
    healthy with no reasons, and the JSON of `scheduler health` says so."""
    heartbeat(r, "lead1", "leader", at=NOW - 1, started_at=NOW - 100_000)
    every_job_ran(r, settings, NOW)
    result = health.check_health(r, settings, now=NOW)
    assert result.status == "healthy" and result.verdict.reasons == ()
    assert result.verdict.to_dict() == {"healthy": True, "problems": []}
    assert result.to_dict()["scheduler"]["beat"]["alive"] is True


def test_a_job_that_missed_two_intervals_is_unhealthy(r: redis.Redis,
                                                      settings: Settings) -> None:
    """Given a live beat, one job last run three intervals ago and another job never run
    although beat has been up for days, then both are unhealthy, each with its reason."""
    heartbeat(r, "lead1", "leader", at=NOW - 1, started_at=NOW - 3 * 86400)
    every_job_ran(r, settings, NOW)
    late, never = jobs.JOBS[0], jobs.JOBS[1]
    r.delete(keys.job_facts(late.name), keys.job_outcomes(late.name),
             keys.job_facts(never.name), keys.job_outcomes(never.name))
    run_job(r, late.name, NOW - 3 * late.interval_s(settings))
    verdict = health.check_health(r, settings, now=NOW).verdict
    interval = late.interval_s(settings)
    assert verdict.problems == [
        f"{late.name}: last ran {3 * interval}s ago, more than two intervals of {interval}s",
        (f"{never.name}: never ran although beat has been up for {3 * 86400}s "
         f"(interval {never.interval_s(settings)}s)")]


@pytest.mark.parametrize(("failures", "status", "healthy"), [
    (1, "degraded", True),
    (2, "degraded", True),
    (3, "unhealthy", False),
    (5, "unhealthy", False),
])
def test_failures_in_a_row_degrade_then_make_unhealthy(r: redis.Redis, settings: Settings,
                                                       failures: int, status: str,
                                                       healthy: bool) -> None:
    """Given a live beat and a job that failed ``failures`` times in a row, then one or two
    failures degrade the system and three make it unhealthy."""
    heartbeat(r, "lead1", "leader", at=NOW - 1, started_at=NOW - 100_000)
    every_job_ran(r, settings, NOW)
    job = jobs.JOBS[2].name
    for i in range(failures):
        run_job(r, job, NOW - 10 + i, fail=True)
    verdict = health.check_health(r, settings, now=NOW).verdict
    assert verdict.status == status and verdict.healthy is healthy
    (reason,) = verdict.reasons
    times = "time" if failures == 1 else "times"
    assert reason.component == job
    assert reason.message == (f"{job}: failed {failures} {times} in a row "
                              f"(last error: RuntimeError: registry unreadable)")


@pytest.mark.parametrize(("consumed", "alive"), [
    ({}, {"events": False, "monitoring": False, "tuning": False}),
    ({"w1": ["mlops.events"]}, {"events": True, "monitoring": False, "tuning": False}),
    ({"w1": ["mlops.events", "mlops.monitoring", "mlops.tuning"]},
     {"events": True, "monitoring": True, "tuning": True}),
    ({"w1": ["mlops.tuning"], "w2": ["mlops.monitoring", "mlops.tuning"]},
     {"events": False, "monitoring": True, "tuning": True}),
])
def test_a_pool_is_alive_when_some_worker_consumes_all_its_queues(
        consumed: dict[str, list[str]], alive: dict[str, bool]) -> None:
    """Pure: which pools the workers' queues serve."""
    pools = health.pool_liveness(EVERY_POOL, consumed)
    assert {p.name: p.alive for p in pools} == alive
    tuning = next(p for p in pools if p.name == "tuning")
    assert tuning.workers == tuple(sorted(h for h, qs in consumed.items()
                                          if "mlops.tuning" in qs))


def test_a_pool_without_a_worker_is_unhealthy() -> None:
    """Given pools of which one has no worker, then the verdict names that pool and how to
    start its worker."""
    pools = (PoolLiveness("events", ("mlops.events",), ("events@h",)),
             PoolLiveness("tuning", ("mlops.tuning",), ()))
    verdict = health.evaluate(pools=pools)
    assert verdict.problems == [("pool tuning: no worker consumes mlops.tuning "
                                 "(start `mlops worker --pool tuning`)")]


@pytest.mark.usefixtures("worker")
def test_worker_liveness_asks_a_real_celery_worker(celery_app: Any) -> None:
    """Given the in-process Celery worker consuming every queue, when the workers are asked
    through Celery's remote control, then every pool is served by that worker."""
    ask = health.celery_active_queues(celery_app, timeout_s=3.0)
    pools = health.worker_liveness(EVERY_POOL, ask)
    assert all(p.alive for p in pools), [p.detail for p in pools]
    assert len({p.workers for p in pools}) == 1


def test_a_failing_question_to_the_workers_counts_as_no_worker() -> None:
    """Given a broker that cannot be asked, then no pool is served (and nothing is raised)."""
    def unreachable() -> dict[str, list[str]]:
        raise ConnectionError("broker unreachable")
    assert not any(p.alive for p in health.worker_liveness(EVERY_POOL, unreachable))


def test_queue_depth_counts_waiting_messages_and_degrades_past_the_backlog(
        r: redis.Redis, settings: Settings, celery_app: Any) -> None:
    """Given three tasks sent to a queue no worker consumes, then the queue's depth is 3,
    and with a backlog limit of 2 the verdict is degraded, naming the queue."""
    queue = "mlops.health-test"
    r.delete(queue)
    try:
        for i in range(3):
            celery_app.send_task("mlops.health-test.nothing", args=[i], queue=queue)
        depths = health.queue_depths(r, queues=(queue,))
        assert depths.waiting == {queue: 3} and depths.total_waiting == 3
        assert depths.unacked >= 0
        verdict = health.evaluate(queues=depths, backlog=2)
        assert verdict.status == "degraded" and verdict.healthy is True
        assert verdict.warnings == [f"queue {queue}: 3 messages waiting (more than 2)"]
        # check_health probes the project's queues when given the broker's client
        result = health.check_health(r, settings, scheduler=False, broker=r, now=NOW)
        assert result.queues is not None
        assert set(result.to_dict()["queues"]["waiting"]) == {
            "mlops.events", "mlops.monitoring", "mlops.tuning"}
    finally:
        r.delete(queue)


def test_every_probe_answers_within_its_timeout(r: redis.Redis, settings: Settings,
                                                redis_url: str) -> None:
    """Given a Redis that stops answering (CLIENT PAUSE) and workers that never reply, when
    health is checked with a 0.3 s timeout, then the check returns in about that time per
    probe, with an unhealthy reason for each probe that did not answer."""
    def never_replies() -> dict[str, list[str]]:
        time.sleep(5)
        return {}
    probe_client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=3)
    probe_client.ping()
    r.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    started = time.monotonic()
    result = health.check_health(probe_client, settings, pools=EVERY_POOL,
                                 active_queues=never_replies, timeout_s=0.3)
    elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 1.3 + 0.5  # the scheduler probe, then the workers' (1 s grace)
    assert result.status == "unhealthy" and result.scheduler is None and result.pools is None
    assert result.verdict.problems == ["scheduler did not answer within 0.3s",
                                       "workers did not answer within 1.3s"]
    time.sleep(1.5)  # the pause ends before the next test


@pytest.mark.usefixtures("worker")
def test_verify_systems_checks_every_part_through_the_real_path(celery_app: Any,
                                                               redis_url: str) -> None:
    """Given Redis, the in-process worker, a beat leader heartbeat and the catalogue
    registered, when the systems are verified, then every check passes, the pipeline check
    having sent a synthetic event through the client, the queue and the worker."""
    from mlops_tasks.workers.pools import POOLS

    pipe = Pipeline(redis_url)
    heartbeat(pipe.svc.redis, "lead1", "leader", at=time.time(), started_at=time.time() - 5)
    pools = {n: p.queues for n, p in POOLS.items() if n != "all"}
    result = health.verify_systems(pipe.svc, redis_url, celery_app, pools, timeout_s=15)
    doc = result.to_dict()
    assert [c["name"] for c in doc["checks"]] == [
        "redis", "store topology", "broker", "pool events", "pool monitoring", "pool tuning",
        "beat", "registry catalogue", "metrics pipeline"]
    assert result.ok, [c for c in doc["checks"] if not c["ok"]]
    assert doc["checks"][1]["detail"] == "standalone: master, 0 replicas"
    assert doc["checks"][6]["detail"].startswith("leader lead1@beat-host (pid 4242)")
