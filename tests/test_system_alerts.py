"""The alert kinds that are not about one model's accuracy: failing scheduled jobs, stagnant
auto-tuning, the registry cache's miss rate, and the info events (auto-tuning applied,
configuration updated, cleanup completed). Each goes through the library function its job
calls, with real Redis and a real webhook receiver; one goes through a real Celery worker."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import redis
from prometheus_client import generate_latest

from mlops_tasks import jobs
from mlops_tasks.alerts.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from mlops_tasks.alerts.delivery import deliver, delivery_message
from mlops_tasks.alerts.store import firing_counts
from mlops_tasks.alerts.subjects import alert_subjects
from mlops_tasks.errors import NotFoundError
from mlops_tasks.maintenance.cleanup import cleanup
from mlops_tasks.monitoring import cache_rate, config_events
from mlops_tasks.monitoring.system import run_system_checks
from mlops_tasks.queues import MONITORING_QUEUE
from mlops_tasks.server.activity import read_alerts_fired
from mlops_tasks.server.metrics import MlopsCollector, metrics_registry
from mlops_tasks.timebuckets import DAY_S
from mlops_tasks.timefmt import iso
from mlops_tasks.tuning import stagnation
from mlops_tasks.tuning.engine import run_tuning

from .conftest import wait_for
from .pipeline_support import Pipeline
from .test_monitoring import Receiver
from .test_serve import by_labels, samples
from .test_tuning import feed_calibrated, the_run

SECRET = "s3cret"  # noqa: S105 - a test key
TUNING_JOB = "ml-auto-tuning"
CLEANUP_JOB = "ml-registry-cleanup"


class Hooked:
    """A pipeline whose webhook deliveries are delivered at once, by the worker's own function,
    to a real HTTP receiver."""

    def __init__(self, redis_url: str, receiver: Receiver) -> None:
        self.receiver = receiver
        self.pipe = Pipeline(redis_url, dispatch=self._deliver)
        self.svc = self.pipe.svc

    def _deliver(self, index: int, delivery: dict[str, Any]) -> None:
        message = delivery_message(delivery["alert_id"], delivery["status"], index)
        deliver(self.svc.settings, self.svc.alerts.store, message, 0)

    def posted(self) -> list[dict[str, Any]]:
        """Every delivery received: (alertname, model, status, severity, summary, endsAt)."""
        out = []
        for req in self.receiver.requests:
            stamp = req["headers"][TIMESTAMP_HEADER]  # signed on the pipeline's fake clock
            assert verify(req["body"], SECRET, req["headers"][SIGNATURE_HEADER], stamp,
                          now=int(stamp))
            doc = json.loads(req["body"])
            [alert] = doc["alerts"]
            out.append({"kind": alert["labels"]["alertname"], "model": alert["labels"]["model"],
                        "status": doc["status"], "severity": alert["labels"]["severity"],
                        "summary": alert["annotations"]["summary"],
                        "ended": alert["endsAt"] != "0001-01-01T00:00:00Z"})
        return out

    def history(self, subject: str) -> list[dict[str, Any]]:
        return self.svc.alerts.store.history([subject])


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Any:
    made = Receiver()
    monkeypatch.setenv("MLOPS_WEBHOOK_URLS", made.url)
    monkeypatch.setenv("MLOPS_WEBHOOK_ALLOW_HTTP", "true")  # a local http receiver
    monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("MLOPS_WEBHOOK_BACKOFF_S", "0.2")
    yield made
    made.close()


@pytest.fixture
def hooked(redis_url: str, receiver: Receiver) -> Hooked:
    return Hooked(redis_url, receiver)


def fail(h: Hooked, job: str, times: int) -> None:
    """Record ``times`` failed runs of ``job``, as the worker records them."""
    for _ in range(times):
        with pytest.raises(RuntimeError), jobs.recorded(h.svc.redis, job, h.pipe.clock):
            raise RuntimeError("broker said no")


def succeed(h: Hooked, job: str) -> None:
    with jobs.recorded(h.svc.redis, job, h.pipe.clock):
        pass


def check(h: Hooked, subject: str) -> dict[str, Any]:
    """Run the system checks; the check of ``subject``."""
    result = run_system_checks(h.svc).to_dict()
    return next(c for c in result["checks"] if c["subject"] == subject)


def alert_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "mlops.alerts" and text in r.getMessage()]


# --------------------------------------------------------------------------- failing jobs
def test_a_job_failing_more_than_three_times_in_a_row_is_critical_until_it_succeeds(
        hooked: Hooked, caplog: pytest.LogCaptureFixture, cli) -> None:
    """Given a job that failed 3 times in a row, then nothing fires; at the 4th failure a
    critical alert about the job fires once (log line at CRITICAL, one webhook), further
    failures do not send it again within the repeat interval, and the job's next success
    resolves it (one resolved webhook)."""
    # given
    fail(hooked, TUNING_JOB, 3)
    assert check(hooked, TUNING_JOB)["status"] == "ok"
    assert hooked.svc.alerts.store.active([TUNING_JOB]) == []

    # when: a 4th failure, then a 5th
    fail(hooked, TUNING_JOB, 1)
    with caplog.at_level(logging.INFO):
        first = check(hooked, TUNING_JOB)
        fail(hooked, TUNING_JOB, 1)
        second = check(hooked, TUNING_JOB)

    # then
    assert (first["status"], first["alert"]["notified"], first["alert"]["reason"]) == (
        "alerting", True, "new")
    assert (second["alert"]["notified"], second["alert"]["reason"]) == (False, "suppressed")
    [alert] = hooked.svc.alerts.store.active([TUNING_JOB])
    assert (alert.model, alert.version, alert.kind, alert.severity) == (
        TUNING_JOB, "-", "scheduler_job_failing", "critical")
    assert alert.message == "Scheduler Job Failing: ml-auto-tuning failed 5 times in a row"
    assert alert.values["last_error"] == "RuntimeError: broker said no"
    assert alert_lines(caplog, "Scheduler Job Failing") == [
        (logging.CRITICAL, "Scheduler Job Failing: ml-auto-tuning failed 4 times in a row")]
    assert hooked.posted() == [{
        "kind": "scheduler_job_failing", "model": TUNING_JOB, "status": "firing",
        "severity": "critical", "ended": False,
        "summary": "Scheduler Job Failing: ml-auto-tuning failed 4 times in a row"}]
    listed = cli.json("alerts", "--model", TUNING_JOB)["alerts"]
    assert [(a["model"], a["kind"], a["status"]) for a in listed] == [
        (TUNING_JOB, "scheduler_job_failing", "firing")]
    assert "scheduler_job_failing" in cli("alerts").stdout

    # when: after the repeat interval it is sent again; then the job succeeds
    hooked.pipe.clock.now += hooked.svc.settings.alert_repeat_interval_s
    assert check(hooked, TUNING_JOB)["alert"]["reason"] == "repeat"
    succeed(hooked, TUNING_JOB)
    assert check(hooked, TUNING_JOB)["status"] == "ok"

    # then
    assert hooked.svc.alerts.store.active([TUNING_JOB]) == []
    assert [(p["status"], p["ended"]) for p in hooked.posted()] == [
        ("firing", False), ("firing", False), ("resolved", True)]
    assert [e["event"] for e in hooked.history(TUNING_JOB)] == ["resolved", "fired"]
    other_jobs = [c for c in run_system_checks(hooked.svc).to_dict()["checks"]
                  if c["kind"] == "scheduler_job_failing"]
    assert {c["subject"] for c in other_jobs} == {j.name for j in jobs.JOBS}


def test_a_silence_mutes_a_job_alert_and_checks_its_name_and_kind(
        hooked: Hooked, cli, caplog: pytest.LogCaptureFixture) -> None:
    """Given a silence of one job's failures, then its alert is recorded but neither logged
    nor posted; a silence whose kind is never raised for the name is refused in one line."""
    silence = cli.json("silence", TUNING_JOB, "--kind", "scheduler_job_failing", "--for", "1h")
    assert silence["model"] == TUNING_JOB
    hooked.pipe.clock.now = time.time()  # the silence began on the real clock
    fail(hooked, TUNING_JOB, 4)
    with caplog.at_level(logging.INFO):
        result = check(hooked, TUNING_JOB)
    assert alert_lines(caplog, "Scheduler Job Failing") == []
    assert (result["alert"]["notified"], result["alert"]["reason"]) == (False, "silenced")
    assert hooked.posted() == []
    assert [e["event"] for e in hooked.history(TUNING_JOB)] == ["fired"]

    for args, says in [
            (("registry", "--kind", "accuracy_below_threshold"),
             "error: --kind: accuracy_below_threshold alerts are about a model, not 'registry'"),
            (("n1-detector", "--kind", "scheduler_job_failing"),
             "error: --kind: scheduler_job_failing alerts are about a scheduled job"),
            ((TUNING_JOB, "--kind", "cleanup_completed"),
             "error: --kind: cleanup_completed alerts are about ml-registry-cleanup, not"),
            (("no-such-thing",), "model 'no-such-thing' is not registered")]:
        out = cli("silence", *args, "--for", "1h", expect=1)
        assert says in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in cli("silence", "x", "--kind", "nope", "--for", "1h",
                                  expect=2).stderr
    cli("silence", "registry", "--kind", "registry_cache_miss_rate", "--for", "1h")
    cli("silence", CLEANUP_JOB, "--kind", "cleanup_completed", "--for", "1h")


# --------------------------------------------------------------------------- cache miss rate
def reads(h: Hooked, hits: int, misses: int) -> None:
    """Configuration reads through the registry's cache: ``hits`` of a cached configuration,
    ``misses`` of a target never cached (queue-anomaly is not in production)."""
    for _ in range(hits):
        h.svc.registry.resolved("n1-detector", "latest")
    for _ in range(misses):
        with pytest.raises(NotFoundError):
            h.svc.registry.resolved("queue-anomaly", "production")


def test_the_cache_miss_rate_is_judged_over_a_window_with_a_minimum_of_reads(
        hooked: Hooked, caplog: pytest.LogCaptureFixture) -> None:
    """Given the counters sampled every 30 minutes, then a window under 100 reads is never
    judged however many missed; 25 % misses over 200 reads fires a warning once; under 10 %
    resolves it."""
    clock = hooked.pipe.clock
    reads(hooked, 1, 0)  # warm the cache: one miss
    assert check(hooked, "registry")["status"] == "insufficient_data"  # no earlier sample

    reads(hooked, 20, 30)  # cold start: 60 % of 50 reads
    clock.now += cache_rate.WINDOW_S
    assert check(hooked, "registry")["status"] == "insufficient_data"

    with caplog.at_level(logging.INFO):
        reads(hooked, 150, 50)
        clock.now += cache_rate.WINDOW_S
        fired = check(hooked, "registry")
        reads(hooked, 150, 50)
        clock.now += cache_rate.WINDOW_S
        again = check(hooked, "registry")

    assert (fired["status"], fired["alert"]["notified"]) == ("alerting", True)
    assert fired["detail"] == "50 misses in 200 reads (25.0%)"
    assert (again["status"], again["alert"]["reason"]) == ("alerting", "suppressed")
    [alert] = hooked.svc.alerts.store.active(["registry"])
    assert (alert.model, alert.kind, alert.severity) == (
        "registry", "registry_cache_miss_rate", "warning")
    assert (alert.values["requests"], alert.values["misses"]) == (200, 50)
    expected = ("Registry Cache Miss Rate High: 25.0% of 200 configuration reads missed in the "
                "last 30 min (threshold 10%)")
    assert alert_lines(caplog, "Cache Miss Rate") == [(logging.WARNING, expected)]

    reads(hooked, 300, 10)
    clock.now += cache_rate.WINDOW_S
    assert check(hooked, "registry")["status"] == "ok"
    assert hooked.svc.alerts.store.active(["registry"]) == []
    assert [(p["kind"], p["model"], p["status"]) for p in hooked.posted()] == [
        ("registry_cache_miss_rate", "registry", "firing"),
        ("registry_cache_miss_rate", "registry", "resolved")]


@pytest.mark.parametrize(("before", "now", "hits", "misses"), [
    ({"a": (10, 5)}, {"a": (30, 9)}, 20, 4),
    ({"a": (10, 5)}, {"a": (3, 1), "b": (2, 2)}, 5, 3),  # a was reset, b is new
    ({}, {"a": (7, 0)}, 7, 0),
])
def test_the_window_counts_what_was_read_between_two_samples(before, now, hits,
                                                              misses) -> None:
    w = cache_rate.window(before, now)
    assert (w.hits, w.misses) == (hits, misses)


@pytest.mark.parametrize(("hits", "misses", "verdict"), [
    (0, 99, "insufficient_data"), (90, 10, "ok"), (89, 11, "alerting"),
    (0, 0, "insufficient_data"),
])
def test_the_verdict_needs_a_minimum_of_reads(hits, misses, verdict) -> None:
    assert cache_rate.verdict(cache_rate.Window(hits, misses)) == verdict


# --------------------------------------------------------------------------- tuning
def test_stagnant_tuning_warns_after_a_week_and_an_applied_threshold_resolves_it(
        hooked: Hooked, caplog: pytest.LogCaptureFixture) -> None:
    """Given a model whose threshold is already optimal, then a first tuning run judges
    nothing (less than a week of runs); a run a week later with no improvement of 1 % fires
    tuning_stagnation; a later run that applies a better threshold announces
    auto_tuning_applied (an event: posted once, never firing) and resolves the stagnation."""
    pipe = hooked.pipe
    pipe.deploy("n1-detector")
    feed_calibrated(pipe, "n1-detector", 3000, best=0.6)
    first = the_run(run_tuning(pipe.svc, "n1-detector"), "n1-detector")
    assert (first["reason"], first["improvement_percent"]) == ("already_optimal", 0.0)
    assert pipe.active() == []

    # when: a week later, still nothing to improve
    pipe.clock.now += stagnation.PERIOD_S + 60
    feed_calibrated(pipe, "n1-detector", 3000, best=0.6, seed=1)
    run_tuning(pipe.svc, "n1-detector")

    # then
    [alert] = pipe.active()
    assert (alert["kind"], alert["severity"], alert["version"]) == (
        "tuning_stagnation", "warning", "1.0.0")
    assert alert["message"].startswith(
        "N+1 Detector Auto-Tuning Stagnating: improvements under 1% for 7 days")

    # when: two hours later the best threshold moved
    pipe.clock.now += 7200
    feed_calibrated(pipe, "n1-detector", 4000, best=0.75, seed=2)
    with caplog.at_level(logging.INFO):
        applied = the_run(run_tuning(pipe.svc, "n1-detector"), "n1-detector")

    # then
    assert applied["applied"] is True
    assert pipe.active() == []
    posted = hooked.posted()
    assert [(p["kind"], p["status"], p["ended"]) for p in posted] == [
        ("tuning_stagnation", "firing", False), ("auto_tuning_applied", "firing", True),
        ("tuning_stagnation", "resolved", True)]
    assert posted[1]["summary"].startswith(
        "N+1 Detector auto-tuning applied: confidence_threshold 0.60 -> 0.75 (f1 +")
    [event] = [e for e in hooked.history("n1-detector") if e["kind"] == "auto_tuning_applied"]
    assert (event["status"], event["event"], event["severity"]) == ("event", "occurred", "info")
    assert event["values"]["old_threshold"] == 0.6 and event["values"]["new_threshold"] == 0.75
    assert event["values"]["improvement_percent"] > 5
    # the runbook's `grep auto-tuned` still finds one line per application
    assert len([r for r in caplog.records if "auto-tuned" in r.getMessage()]) == 1
    assert [lvl for lvl, _ in alert_lines(caplog, "auto-tuning applied")] == [logging.INFO]


def stored_run(now: float, days_ago: float, improvement: float | None,
               reason: str = "already_optimal") -> dict[str, Any]:
    """A run as the tuning history keeps it; no improvement means an infinite one (the
    current score was 0)."""
    return {"ran_at": iso(now - days_ago * DAY_S), "improvement_percent": improvement,
            "current_score": 0.0 if improvement is None else 0.5, "best_score": 0.4,
            "reason": reason}


@pytest.mark.parametrize(("runs", "status"), [
    ([], "insufficient_data"),
    ([(0, 0.5)], "insufficient_data"),  # less than a week of runs
    ([(8, 0.0), (1, 0.5)], "stagnating"),
    ([(8, 5.0), (1, 0.5)], "stagnating"),  # the improvement is older than the week
    ([(8, 0.0), (3, 1.0), (1, 0.5)], "improving"),
    ([(8, 0.0), (1, None)], "improving"),  # from a current score of 0: infinite
    ([(8, 0.0), (1, 0.2, "insufficient_data")], "insufficient_data"),  # measured nothing
    ([(0.5, 2.0)], "improving"),  # an improvement resolves at once
])
def test_stagnation_needs_a_week_of_runs_and_every_improvement_under_one_percent(
        runs, status) -> None:
    now = 1_700_000_000.0
    stored = [stored_run(now, *run) for run in runs]
    assert stagnation.judge(stored, now).status == status


# --------------------------------------------------------------------------- config changes
def test_every_configuration_change_is_announced_once_with_its_actor(
        hooked: Hooked, cli, caplog: pytest.LogCaptureFixture) -> None:
    """Given a model registered and deployed (no configuration change), when alice changes its
    configuration and the monitoring job's checks run twice, then one config_updated event
    names alice and the change; a check that lost its cursor does not announce it again; a
    silence mutes the next one, which is still in the history."""
    pipe = hooked.pipe
    pipe.deploy("n1-detector")
    check(hooked, "audit")
    assert hooked.posted() == []

    cli("update-config", "n1-detector", "--set", "accuracy_threshold=0.8", "--actor", "alice",
        "--reason", "new traffic")
    with caplog.at_level(logging.INFO):
        assert check(hooked, "audit")["detail"] == "1 changes announced"
    assert check(hooked, "audit")["detail"] == "0 changes announced"
    hooked.svc.redis.delete(config_events.cursor_key("n1-detector"))  # a crash, say
    assert check(hooked, "audit")["detail"] == "1 changes announced"

    expected = ("N+1 Detector Configuration Updated by alice: accuracy_threshold 0.85 -> 0.8 "
                "(update-config, revision 2)")
    assert alert_lines(caplog, "Configuration Updated") == [(logging.INFO, expected)]
    assert [(p["kind"], p["model"], p["summary"], p["ended"]) for p in hooked.posted()] == [
        ("config_updated", "n1-detector", expected, True)]
    [event] = [e for e in hooked.history("n1-detector") if e["kind"] == "config_updated"]
    assert (event["values"]["actor"], event["values"]["reason"]) == ("alice", "new traffic")
    assert event["values"]["changes"] == [
        {"field": "accuracy_threshold", "before": 0.85, "after": 0.8}]
    listed = cli.json("alerts", "--model", "n1-detector")["alerts"]
    assert [(a["kind"], a["status"]) for a in listed] == [("config_updated", "event")]
    assert cli.json("alerts", "--active")["alerts"] == []

    cli("silence", "n1-detector", "--kind", "config_updated", "--for", "1h")
    pipe.clock.now = time.time()  # the silence began on the real clock
    cli("rollback-config", "n1-detector", "--actor", "bob")
    check(hooked, "audit")
    assert len(hooked.posted()) == 1
    events = [e for e in hooked.history("n1-detector") if e["kind"] == "config_updated"]
    assert [e["values"]["actor"] for e in events] == ["bob", "alice"]
    assert events[0]["notifications"] == 0


# --------------------------------------------------------------------------- cleanup
def test_a_cleanup_announces_what_it_removed(hooked: Hooked, r) -> None:
    """Given old alert history, when the daily cleanup runs, then one cleanup_completed event
    about the cleanup job says what went; a dry run announces nothing."""
    old = hooked.pipe.clock.now - 40 * DAY_S
    for i in range(3):
        r.lpush("mlops:{n1-detector}:alerts:history",
                json.dumps({"at": old, "id": f"old{i}", "event": "fired"}))
    cleanup(hooked.svc, 30 * DAY_S, dry_run=True)
    assert hooked.posted() == []

    report = cleanup(hooked.svc, 30 * DAY_S)

    assert report.deleted["alert_history"] == 3
    [posted] = hooked.posted()
    assert (posted["kind"], posted["model"], posted["severity"], posted["ended"]) == (
        "cleanup_completed", CLEANUP_JOB, "info", True)
    assert posted["summary"] == (f"Registry Cleanup Completed: removed 3 alert history "
                                 f"(older than {report.cutoff})")
    [event] = hooked.history(CLEANUP_JOB)
    assert event["values"]["alert_history"] == 3 and event["status"] == "event"


# --------------------------------------------------------------------------- metrics
def test_the_collector_can_count_system_alerts_firing_and_events_fired(
        hooked: Hooked, raw: redis.Redis) -> None:
    """Given a job alert firing and a cleanup announced, then read over every alert subject,
    the job alert is firing and counted as fired, and the event is counted but never firing
    (what mlops_alerts_firing and mlops_alerts_total read)."""
    fail(hooked, TUNING_JOB, 4)
    run_system_checks(hooked.svc)
    cleanup(hooked.svc, 30 * DAY_S)

    subjects = alert_subjects(hooked.svc.registry.model_names())

    assert {s: c for s, c in firing_counts(raw, subjects).items() if c} == {
        TUNING_JOB: {("scheduler_job_failing", "critical"): 1}}
    assert {s: c for s, c in read_alerts_fired(raw, subjects).items() if c} == {
        TUNING_JOB: {"scheduler_job_failing:critical": 1},
        CLEANUP_JOB: {"cleanup_completed:info": 1}}

    registry = metrics_registry(MlopsCollector(hooked.svc.redis, raw, None, hooked.svc.settings))
    found = samples(generate_latest(registry).decode())
    assert by_labels(found, "mlops_alerts_firing", "model", "kind", "severity") == {
        (TUNING_JOB, "scheduler_job_failing", "critical"): 1.0}
    fired = by_labels(found, "mlops_alerts_total", "model", "kind", "severity")
    assert fired[(TUNING_JOB, "scheduler_job_failing", "critical")] == 1.0
    assert fired[(CLEANUP_JOB, "cleanup_completed", "info")] == 1.0


# --------------------------------------------------------------------------- a real worker
def test_through_a_real_worker_a_failing_job_pages_and_its_success_resolves(
        worker, redis_url: str, receiver: Receiver, celery_app, cli) -> None:
    """Given a real worker, when the cleanup job fails four times in a row and monitoring runs,
    then the worker posts a signed critical scheduler_job_failing; when the cleanup succeeds it
    announces cleanup_completed, and the next monitoring run resolves the failing alert."""
    Pipeline(redis_url)  # the catalogue, registered
    cleanup_task = next(j.task for j in jobs.JOBS if j.name == CLEANUP_JOB)
    for _ in range(4):  # a model that does not exist: the run fails
        celery_app.send_task(cleanup_task, kwargs={"model": "no-such-model"},
                             queue=MONITORING_QUEUE)
    wait_for(lambda: jobs.facts(redis.Redis.from_url(redis_url, decode_responses=True),
                                CLEANUP_JOB)["consecutive_failures"] == 4,
             timeout=60, what="four failed cleanup runs")

    run = cli.json("run", "monitoring", "--wait", "--timeout", "60")
    failing = next(c for c in run["system"]["checks"] if c["subject"] == CLEANUP_JOB)
    assert failing["status"] == "alerting"
    wait_for(lambda: receiver.requests, timeout=30, what="the webhook")

    cli("run", "cleanup", "--wait", "--timeout", "60")
    cli("run", "monitoring", "--wait", "--timeout", "60")
    wait_for(lambda: len(receiver.requests) == 3, timeout=30, what="three webhooks")

    posted = []
    for req in receiver.requests:
        assert verify(req["body"], SECRET, req["headers"][SIGNATURE_HEADER],
                      req["headers"][TIMESTAMP_HEADER])
        doc = json.loads(req["body"])
        labels = doc["alerts"][0]["labels"]
        posted.append((labels["alertname"], labels["model"], labels["severity"], doc["status"]))
    assert sorted(posted) == sorted([
        ("scheduler_job_failing", CLEANUP_JOB, "critical", "firing"),
        ("cleanup_completed", CLEANUP_JOB, "info", "firing"),
        ("scheduler_job_failing", CLEANUP_JOB, "critical", "resolved")])
    statuses = {(a["kind"], a["status"]) for a in
                cli.json("alerts", "--model", CLEANUP_JOB)["alerts"]}
    assert statuses == {("scheduler_job_failing", "resolved"), ("cleanup_completed", "event")}
    sent = [n for n in cli.json("notifications")["notifications"]
            if n["channel"] == "webhook" and n["result"] == "sent"]
    assert {n["model"] for n in sent} == {CLEANUP_JOB}

