"""Client -> Celery -> worker -> Redis, end to end, with real workers and a real Redis."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import redis
from sklearn.metrics import accuracy_score, f1_score

from mlops_tasks import keys
from mlops_tasks.client import MonitoringClient
from mlops_tasks.errors import ValidationError
from mlops_tasks.ingest import journal
from mlops_tasks.ingest.pipeline import Ingestor
from mlops_tasks.queues import EVENTS_QUEUE, TASK_INGEST_PREDICTIONS
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings
from mlops_tasks.windows import WindowReader

from .conftest import wait_for
from .processes import WorkerProcess, project_env
from .redis_server import RedisServer
from .test_registry import register_catalogue

MODEL = "waf-behavioral"


def totals(url: str, model: str = MODEL, version: str = "1.0.0") -> dict[str, float]:
    reader = WindowReader(redis.Redis.from_url(url), Settings.from_env({}))
    return reader.totals(model, version)


def test_events_through_real_workers_give_scikit_learn_metrics(worker, registry, redis_url,
                                                               cli) -> None:
    """Given a detector recording 4,000 predictions, a quarter labeled later, when the worker
    has ingested them, then performance-summary shows scikit-learn's metrics."""
    register_catalogue(registry)
    rng = np.random.default_rng(11)
    n = 4000
    scores = rng.random(n)
    actual = rng.random(n) < scores
    predicted = scores >= 0.7  # waf-behavioral's decision threshold
    with MonitoringClient(flush_interval_ms=20) as client:
        ids = [client.record_prediction(MODEL, float(s), actual=bool(a) if i % 4 else None,
                                        latency_ms=1.5)
               for i, (s, a) in enumerate(zip(scores, actual, strict=True))]
        for i in range(0, n, 4):
            client.record_ground_truth(MODEL, ids[i], bool(actual[i]))
        assert client.flush(30)
        assert client.stats()["dropped"] == 0
    wait_for(lambda: totals(redis_url).get("labeled") == n, what="all outcomes")
    doc = cli.json("performance-summary")
    waf = next(m for m in doc["models"] if m["name"] == MODEL)
    since = waf["windows"]["since_deployment"]
    assert since["count"] == n
    assert since["accuracy"] == pytest.approx(accuracy_score(actual, predicted))
    assert since["f1"] == pytest.approx(f1_score(actual, predicted))
    assert waf["pending_labels"] == 0 and waf["orphan_labels"] == 0
    assert set(waf["windows"]) >= {"last_100", "last_1000", "since_deployment"}
    for window in waf["windows"].values():
        assert {"count", "accuracy", "precision", "recall", "f1", "false_positive_rate",
                "avg_confidence", "latency_p50_ms", "latency_p95_ms"} <= set(window)


def test_bad_events_reach_the_dead_letter_store_and_the_cli(worker, registry, redis_url, cli,
                                                            celery_app) -> None:
    register_catalogue(registry)
    batch = {"v": 1, "kind": "predictions", "batch_id": "raw-1", "model": MODEL, "n": 3,
             "score": [0.9, 7, 0.2], "actual": [1, 1, 0]}
    celery_app.send_task(TASK_INGEST_PREDICTIONS, args=[batch], queue=EVENTS_QUEUE)
    celery_app.send_task(TASK_INGEST_PREDICTIONS, args=[dict(batch, batch_id="raw-2",
                                                             model="nobody")], queue=EVENTS_QUEUE)
    wait_for(lambda: totals(redis_url).get("n") == 2, what="good events")
    doc = wait_for(lambda: (d := cli.json("dead-letters")) and len(d["dead_letters"]) == 4 and d,
                   what="dead letters")
    reasons = {x["reason"] for x in doc["dead_letters"]}
    assert reasons == {"score: expected a number in [0, 1], got 7.0",
                       "model: 'nobody' is not registered"}
    only = cli.json("dead-letters", "--model", MODEL)
    assert [x["event"]["score"] for x in only["dead_letters"]] == [7]
    assert "score: expected a number in [0, 1]" in cli("dead-letters").stdout


def test_the_client_validates_every_argument(redis_url) -> None:
    """Given bad arguments, when recorded, then each call raises a ValidationError (a
    ValueError) naming the field, with the wire format's wording, and records nothing."""
    with MonitoringClient() as client:
        cases = [
            (lambda: client.record_prediction("", 0.5), "model: expected a model name"),
            (lambda: client.record_prediction("Bad Name", 0.5), "model: expected"),
            (lambda: client.record_prediction(["x"], 0.5), "model: expected"),
            (lambda: client.record_prediction(MODEL, 1.5), r"score: expected a number in \[0, 1\]"),
            (lambda: client.record_prediction(MODEL, "0.5"), "score: expected a number"),
            (lambda: client.record_prediction(MODEL, float("nan")), "score: expected a number"),
            (lambda: client.record_prediction(MODEL, 0.5, actual="yes"),
             "actual: expected true/false or 1/0"),
            (lambda: client.record_prediction(MODEL, 0.5, actual=2), "actual: expected"),
            (lambda: client.record_prediction(MODEL, 0.5, predicted=0.3), "predicted: expected"),
            (lambda: client.record_prediction(MODEL, 0.5, latency_ms=-1),
             "latency_ms: expected a number >= 0"),
            (lambda: client.record_prediction(MODEL, 0.5, prediction_id=""),
             "prediction_id: expected a string"),
            (lambda: client.record_prediction(MODEL, 0.5, version="v1"),
             "version: expected a semantic version"),
            (lambda: client.record_prediction(MODEL, 0.5, timestamp=-1),
             "timestamp: expected a number >= 0"),
            (lambda: client.record_prediction(MODEL, 0.5, metadata=[1]),
             "metadata: expected an object"),
            (lambda: client.record_ground_truth(MODEL, "id", None), "actual: expected"),
            (lambda: client.record_ground_truth(MODEL, 7, actual=True), "prediction_id: expected"),
            (lambda: client.record_batch(MODEL, [0.1, 2.0]), r"scores\[1\]: expected a number"),
            (lambda: client.record_batch(MODEL, [0.1, None]), r"scores\[1\]: required"),
            (lambda: client.record_batch(MODEL, [[0.1]]),
             r"scores\[0\]: expected a number, got list of 1"),
            (lambda: client.record_batch(MODEL, [0.1, 0.2], actual=[1]),
             "actual: expected 2 values, got 1"),
            (lambda: client.record_batch(MODEL, [0.1, 0.2], actual=[1, "x"]), r"actual\[1\]"),
            (lambda: client.record_batch(MODEL, [0.1, 0.2], actual=np.array([1, -1])),
             r"actual\[1\]: expected true/false or 1/0"),
            (lambda: client.record_batch(MODEL, [0.1, 0.2], latency_ms=[1.0, -2.0]),
             r"latency_ms\[1\]: expected a number >= 0, got -2.0"),
            (lambda: client.record_batch(MODEL, [0.1], prediction_ids=[""]),
             r"prediction_ids\[0\]: expected a string"),
            (lambda: client.record_batch(MODEL, [0.1], version="1.0"),
             "version: expected a semantic version"),
        ]
        for call, message in cases:
            with pytest.raises(ValidationError, match=message):
                call()
        assert client.stats()["recorded"] == 0


def test_detectors_pick_up_a_new_threshold_without_restarting(registry, redis_url) -> None:
    register_catalogue(registry)
    with MonitoringClient(config_ttl_s=0.2) as client:
        assert client.decision_threshold("n1-detector") == 0.6
        registry.set_config("n1-detector", actor="auto-tuner",
                            changes=[("decision_threshold", 0.7)])
        wait_for(lambda: client.decision_threshold("n1-detector") == 0.7, timeout=5,
                 what="new threshold")


def _stream(client: MonitoringClient, n: int, offset: int = 0) -> None:
    for i in range(n):
        client.record_prediction(MODEL, ((i + offset) % 100) / 100, actual=i % 2 == 0)


@pytest.mark.slow
def test_the_broker_down_while_recording_loses_nothing_within_the_bound(tmp_path) -> None:
    """Given a worker and a client, when Redis (broker and store) goes down while the detector
    keeps recording and comes back, then every event within the buffer bound is counted and
    events past the bound are dropped, counted and reported."""
    server = RedisServer(tmp_path / "redis", appendonly=True, appendfsync="always").start()
    worker = None
    try:
        registry = Registry(redis.Redis.from_url(server.url, decode_responses=True),
                            Settings.from_env({}))
        register_catalogue(registry)
        worker = WorkerProcess(server.url, tmp_path, "--concurrency", "1").start()
        client = MonitoringClient(server.url, redis_url=server.url, flush_interval_ms=20,
                                  max_buffer=3000, settings=Settings.from_env({}))
        _stream(client, 500)
        assert client.flush(20)
        # applied before Redis goes: a worker whose connection drops while it holds an
        # unacknowledged message can die in kombu's close path (celery/kombu #582, #970); a
        # supervisor restarts it and the message comes back, but this test's worker is alone
        wait_for(lambda: totals(server.url).get("n") == 500, what="the first 500 events")
        server.stop()
        _stream(client, 2500, offset=500)  # within the bound: buffered
        time.sleep(0.5)
        _stream(client, 700, offset=3000)  # past the bound: dropped
        stats = client.stats()
        assert stats["dropped"] == 200 and stats["send_failures"] >= 1
        assert stats["broker_reachable"] is False and stats["buffered"] == 3000
        server.start()
        assert client.flush(60), client.stats()
        client.close()
        wait_for(lambda: totals(server.url).get("n") == 3500, timeout=60,
                 what="all buffered events")
        assert client.stats()["sent"] == 3500
    finally:
        if worker:
            worker.stop()
        server.stop()


@pytest.mark.slow
def test_a_worker_killed_mid_stream_loses_nothing_and_counts_nothing_twice(tmp_path) -> None:
    """Given a stream of 60 batches, when the worker is SIGKILLed while it works through them
    and a new worker starts, then the final counts are exact."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    first = second = None
    try:
        registry = Registry(redis.Redis.from_url(server.url, decode_responses=True),
                            Settings.from_env({}))
        register_catalogue(registry)
        env = {"MLOPS_VISIBILITY_TIMEOUT_S": "2", "MLOPS_JOURNAL_REPLAY_S": "3"}
        first = WorkerProcess(server.url, tmp_path, "--concurrency", "2", **env).start()
        rng = np.random.default_rng(5)
        batches, size = 60, 5000
        with MonitoringClient(server.url, redis_url=server.url, overflow="block",
                              settings=Settings.from_env({})) as client:
            for _ in range(batches):
                client.record_batch(MODEL, rng.random(size), actual=rng.random(size) < 0.5)
            assert client.flush(30)
        wait_for(lambda: totals(server.url).get("n", 0) >= 5 * size, timeout=60,
                 what="some batches processed")
        first.kill()
        done_at_kill = totals(server.url).get("n", 0)
        assert done_at_kill < batches * size, "the worker finished before it could be killed"
        second = WorkerProcess(server.url, tmp_path, "--concurrency", "2", **env).start()
        # Redelivery brings back what the dead worker had taken; a message it had popped but
        # not yet recorded (kombu's window) comes back from the journal, which the monitoring
        # job replays: run it as beat would until every batch is in.
        deadline = time.monotonic() + 120
        while totals(server.url).get("n") != batches * size:
            assert time.monotonic() < deadline, f"only {totals(server.url).get('n')} counted"
            subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", "run", "monitoring",
                            "--wait", "--timeout", "30"], env=project_env(server.url, **env),
                           capture_output=True, timeout=60)
            time.sleep(1)
        time.sleep(3)  # a late redelivery would show up as a double count
        final = totals(server.url)
        assert final["n"] == batches * size and final["labeled"] == batches * size
        assert journal.pending(redis.Redis.from_url(server.url), MODEL) == 0
    finally:
        for w in (first, second):
            if w:
                w.stop()
        server.stop()


def test_the_worker_command_rejects_unknown_queues(cli) -> None:
    result = cli("worker", "--queues", "mlops.events,bogus", expect=1)
    assert result.stderr.strip() == ("error: --queues: unknown queue 'bogus' (allowed: "
                                     "mlops.events, mlops.monitoring, mlops.tuning)")


def test_performance_cli_commands(registry, raw, cli) -> None:
    register_catalogue(registry)
    ingestor = Ingestor(registry.settings, registry, raw)
    rng = np.random.default_rng(2)
    scores = rng.random(400)
    ingestor.ingest_predictions({
        "v": 1, "kind": "predictions", "batch_id": "c1", "model": MODEL, "n": 400,
        "score": scores.tolist(), "id_prefix": "c-", "id_start": 0,
        "actual": [int(s > 0.5) if i % 2 else -1 for i, s in enumerate(scores)],
        "timestamp": time.time() - 120})
    ingestor.ingest_labels({"v": 1, "kind": "labels", "batch_id": "c2", "model": MODEL, "n": 101,
                            "prediction_id": [f"c-{i:x}" for i in range(0, 200, 2)] + ["zz"],
                            "actual": [1] * 101})
    details = cli.json("performance-details", MODEL, "--recent", "50")
    assert details["windows"]["last_50"]["count"] == 50
    assert details["daily"][-1]["count"] == 300
    suff = cli.json("data-sufficiency", MODEL)
    assert suff["requirements"]["tuning_min_samples"] == 100
    assert {w["window"]: w["labeled"] for w in suff["windows"]}["since_deployment"] == 300
    gt = cli.json("validate-ground-truth", MODEL)
    assert gt["coverage"]["since_deployment"]["coverage"] == pytest.approx(0.75)
    assert gt["pending_labels"] == 100 and gt["orphan_labels"] == 1
    assert gt["label_delay_s"]["delayed_labels"] == 100 and gt["label_delay_s"]["p50"] > 60
    errors = cli.json("analyze-errors", MODEL, "--window", "1h")
    assert sum(b["labeled"] for b in errors["bands"]) == 300
    assert errors["total"]["fp"] == sum(b["false_positives"] for b in errors["bands"])
    bad = cli("analyze-errors", MODEL, "--window", "soon", expect=1)
    assert "--window: expected a duration" in bad.stderr
    for command in (["performance-summary"], ["performance-details", MODEL],
                    ["data-sufficiency", MODEL], ["validate-ground-truth", MODEL],
                    ["analyze-errors", MODEL]):
        assert cli(*command).stdout.strip()
    assert json.loads(cli("performance-summary", "--json").stdout)["models"]


def test_non_json_metadata_is_refused_at_the_call(redis_url) -> None:
    with MonitoringClient() as client:
        with pytest.raises(ValueError, match="metadata: expected JSON values"):
            client.record_prediction(MODEL, 0.5, metadata={"n": np.int64(3)})
        client.record_prediction(MODEL, 0.5, metadata={"route": "/checkout", "n": 3})
        assert client.stats()["recorded"] == 1


def test_record_batch_larger_than_the_buffer_is_split_not_stuck(worker, registry,
                                                                 redis_url) -> None:
    register_catalogue(registry)
    with MonitoringClient(max_buffer=300, overflow="block", flush_interval_ms=10) as client:
        ids = client.record_batch(MODEL, np.linspace(0, 1, 1000), actual=np.ones(1000, int))
        assert len(ids) == 1000 and len(set(ids)) == 1000
        assert client.flush(20)
    wait_for(lambda: totals(redis_url).get("n") == 1000, what="all events")


FORK_SCRIPT = """
import json, os, sys
from mlops_tasks.client import MonitoringClient
from mlops_tasks.ingest import journal
client = MonitoringClient(flush_interval_ms=10)
ids = [client.record_prediction("waf-behavioral", 0.5, actual=True) for _ in range(3)]
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    child = [client.record_prediction("waf-behavioral", 0.5, actual=True) for _ in range(3)]
    done = client.flush(20)
    os.write(write, json.dumps([child, done, client.stats()["sent"]]).encode())
    os._exit(0)
os.waitpid(pid, 0)
child, done, sent = json.loads(os.read(read, 65536))
print(json.dumps({"parent": ids, "child": child, "child_flushed": done, "child_sent": sent,
                  "parent_flushed": client.flush(20)}))
"""


def test_a_forked_child_gets_its_own_sender_and_ids(worker, registry, redis_url,
                                                     tmp_path) -> None:
    """Given a client created before fork (gunicorn --preload), when parent and child both
    record, then both batches arrive and their generated ids differ."""
    import subprocess
    import sys

    from .processes import project_env

    register_catalogue(registry)
    out = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True,
                         timeout=90, env=project_env(redis_url, MLOPS_DATA_DIR=str(tmp_path)))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["child_flushed"] is True and doc["child_sent"] == 3
    assert doc["parent_flushed"] is True
    assert not set(doc["child"]) & set(doc["parent"])
    wait_for(lambda: totals(redis_url).get("n") == 6, what="parent and child events")


def test_events_recorded_after_close_are_counted_as_dropped(redis_url) -> None:
    client = MonitoringClient()
    client.close()
    client.record_prediction(MODEL, 0.5)
    client.record_batch(MODEL, [0.1, 0.2])
    assert client.stats()["dropped"] == 3 and client.stats()["recorded"] == 0


def test_a_batch_that_breaks_processing_is_dead_lettered_not_dropped(worker, registry, r,
                                                                      redis_url) -> None:
    from mlops_tasks import deadletters
    from mlops_tasks.workers.ingest_tasks import _guarded

    register_catalogue(registry)
    batch = {"v": 1, "kind": "predictions", "batch_id": "boom", "model": MODEL, "n": 2,
             "score": [0.1, 0.2]}

    def boom() -> dict:
        raise ZeroDivisionError("boom")

    result = _guarded(batch, "predictions", boom)
    assert result["dead_letters"] == 2
    letters = deadletters.read(r, registry.model_names(), MODEL)
    assert {x["reason"] for x in letters} == {"processing failed: ZeroDivisionError: boom"}


def test_a_huge_number_rejects_only_its_event(worker, registry, redis_url, celery_app,
                                              r) -> None:
    from mlops_tasks import deadletters

    register_catalogue(registry)
    batch = {"v": 1, "kind": "predictions", "batch_id": "huge", "model": MODEL, "n": 3,
             "score": [0.5, 0.7, 10 ** 400], "actual": [1, 0, 1]}
    celery_app.send_task(TASK_INGEST_PREDICTIONS, args=[batch], queue=EVENTS_QUEUE)
    wait_for(lambda: totals(redis_url).get("n") == 2, what="the two good events")
    [letter] = wait_for(lambda: deadletters.read(r, registry.model_names(), MODEL),
                        what="the dead letter")
    assert letter["index"] == 2 and letter["reason"].startswith("score: expected a number")


def test_a_batch_the_broker_lost_is_sent_again_from_the_journal(worker, registry, redis_url,
                                                                raw, celery_app) -> None:
    """Given a batch journaled by the client whose message never reached a worker, when the
    journal is replayed, then it is counted once; replaying again changes nothing."""
    register_catalogue(registry)
    body = {"v": 1, "kind": "predictions", "batch_id": "lost-1", "model": MODEL, "n": 3,
            "score": [0.9, 0.2, 0.8], "actual": [1, 0, 1]}
    journal.record(raw, MODEL, "lost-1", TASK_INGEST_PREDICTIONS, body, now=time.time() - 60)
    assert journal.pending(raw, MODEL) == 1

    def send(task: str, b: dict) -> None:
        celery_app.send_task(task, args=[b], queue=EVENTS_QUEUE)

    assert journal.replay(raw, [MODEL], 30, send) == {MODEL: 1}
    wait_for(lambda: totals(redis_url).get("n") == 3, what="the replayed batch")
    wait_for(lambda: journal.pending(raw, MODEL) == 0, what="the journal entry removed")
    # a duplicate delivery of the same batch is not counted twice
    send(TASK_INGEST_PREDICTIONS, body)
    time.sleep(1)
    assert totals(redis_url)["n"] == 3
    assert journal.replay(raw, [MODEL], 0, send) == {}


def queued_batches(raw: redis.Redis) -> list[dict]:
    """The batches waiting in the ingest queue, as the worker would decode them (kombu keeps
    each message as JSON with a base64 body holding [args, kwargs, embed])."""
    out = []
    for message in reversed(raw.lrange(EVENTS_QUEUE, 0, -1)):  # LPUSHed: oldest last
        envelope = json.loads(message)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        out.append(args[0])
    return out


def test_the_client_journals_what_it_sends(tmp_path) -> None:
    """Given a Redis no worker consumes from, when a client sends a batch, then before anything
    applies it the journal holds an entry with exactly the body on the queue; when the worker's
    ingest applies that body, the entry goes in the same step. (Without the journal the first
    check fails: the old version of this test, which looked only after the worker, did not.)"""
    server = RedisServer(tmp_path / "redis").start()
    try:
        raw = redis.Redis.from_url(server.url)
        settings = Settings.from_env({"REDIS_URL": server.url})
        registry = Registry(redis.Redis.from_url(server.url, decode_responses=True), settings)
        register_catalogue(registry)
        with MonitoringClient(server.url, redis_url=server.url, settings=settings,
                              flush_interval_ms=10) as client:
            client.record_batch(MODEL, [0.1, 0.9], actual=[0, 1])
            client.record_prediction(MODEL, 0.7, actual=True, metadata={"route": "/"})
            assert client.flush(20)
        queued = queued_batches(raw)
        assert [b["n"] for b in queued] == [2, 1]
        assert journal.pending(raw, MODEL) == 2
        for body in queued:
            entry = raw.get(keys.journal_entry(MODEL, body["batch_id"]))
            assert entry is not None, f"batch {body['batch_id']} sent without a journal entry"
            assert journal.decode(entry) == (TASK_INGEST_PREDICTIONS, body)
        # the worker's ingest (the apply script the task runs) forgets each entry as it applies
        ingestor = Ingestor(settings, registry, raw)
        for body in queued:
            assert ingestor.ingest_predictions(body)["applied"] is True
            assert raw.get(keys.journal_entry(MODEL, body["batch_id"])) is None
        assert journal.pending(raw, MODEL) == 0
        assert totals(server.url)["n"] == 3
    finally:
        server.stop()
