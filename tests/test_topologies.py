"""Beyond one Redis: RabbitMQ as the broker with a three-node Redis Cluster as the store, and a
Redis behind Sentinel that fails over mid-stream. Real servers and real worker processes; the
RabbitMQ tests skip with the reason when the machine has none."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from sklearn.metrics import accuracy_score, f1_score

from mlops_tasks import keys
from mlops_tasks.client import MonitoringClient
from mlops_tasks.connection import connect, resolve_redis_url
from mlops_tasks.ingest import journal
from mlops_tasks.roles import OPERATOR
from mlops_tasks.settings import Settings
from mlops_tasks.windows import WindowReader

from .conftest import wait_for
from .processes import BeatProcess, WorkerProcess, project_env
from .test_scheduler import COMPRESSED
from .topologies import RedisClusterServers, SentinelSet, rabbitmq_vhost

WAF, N1 = "waf-behavioral", "n1-detector"


def mlops(env: dict[str, str], *args: str,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def mlops_json(env: dict[str, str], *args: str) -> Any:
    result = mlops(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Stack:
    """The settings of every process of one topology, and readers of the store."""

    def __init__(self, redis_url: str | None, data: Path, **extra: str) -> None:
        self.extra = {"MLOPS_DATA_DIR": str(data), **extra}
        self.env = project_env(redis_url or "", **self.extra)
        if redis_url is None:
            del self.env["REDIS_URL"]
        self.settings = Settings.from_env({k: v for k, v in self.env.items()
                                           if k in {"REDIS_URL", *extra}})

    def store(self) -> redis.Redis:
        return connect(resolve_redis_url(self.settings, start=False, role=OPERATOR),
                       decode=False)

    def totals(self, model: str) -> dict[str, float]:
        return WindowReader(self.store(), self.settings).totals(model, "1.0.0")

    def client(self) -> MonitoringClient:
        return MonitoringClient(settings=self.settings, overflow="block")

    def worker(self, log_dir: Path, *args: str, **env: str) -> WorkerProcess:
        return WorkerProcess(self.env.get("REDIS_URL", ""), log_dir, *args,
                             **{**self.extra, **env})


@pytest.fixture
def rabbit_cluster(tmp_path: Path) -> Iterator[Stack]:
    """RabbitMQ (a private virtual host) as the broker, a Redis Cluster as the store, the
    catalogue registered."""
    with rabbitmq_vhost() as amqp:
        cluster = RedisClusterServers(tmp_path / "cluster").start()
        try:
            stack = Stack(cluster.url, tmp_path / "data", MLOPS_REDIS_CLUSTER="true",
                          CELERY_BROKER_URL=amqp)
            assert mlops(stack.env, "register-all-models").returncode == 0
            yield stack
        finally:
            cluster.stop()


def test_rabbitmq_and_a_cluster_give_scikit_learn_metrics_and_run_every_job(
        rabbit_cluster: Stack, tmp_path: Path) -> None:
    """Given RabbitMQ and a three-node cluster, when a detector records 4,000 predictions (a
    quarter labeled later), then the metrics equal scikit-learn's; and tuning, degradation,
    monitoring and cleanup run through their queues, sent by hand and by beat."""
    stack = rabbit_cluster
    worker = stack.worker(tmp_path, "--concurrency", "2").start()
    try:
        rng = np.random.default_rng(11)
        n = 4000
        scores = rng.random(n)
        actual = rng.random(n) < scores
        predicted = scores >= 0.7  # waf-behavioral's decision threshold
        with stack.client() as client:
            ids = [client.record_prediction(WAF, float(s), actual=bool(a) if i % 4 else None)
                   for i, (s, a) in enumerate(zip(scores, actual, strict=True))]
            for i in range(0, n, 4):
                client.record_ground_truth(WAF, ids[i], bool(actual[i]))
            assert client.flush(30)
        wait_for(lambda: stack.totals(WAF).get("labeled") == n, timeout=60,
                 what="all outcomes")
        doc = mlops_json(stack.env, "performance-summary")
        since = next(m for m in doc["models"] if m["name"] == WAF)["windows"]["since_deployment"]
        assert since["count"] == n
        assert since["accuracy"] == pytest.approx(accuracy_score(actual, predicted))
        assert since["f1"] == pytest.approx(f1_score(actual, predicted))

        # the jobs, through their queues, with results back over RabbitMQ (rpc://)
        assert mlops(stack.env, "deploy", WAF, "--version", "1.0.0", "--env", "production",
                     "--actor", "alice").returncode == 0
        runs = {job: mlops_json(stack.env, "run", job, "--wait", "--timeout", "60")
                for job in ("monitoring", "degradation", "tuning", "cleanup")}
        assert [m["name"] for m in runs["monitoring"]["models"]] == [WAF]
        assert runs["monitoring"]["models"][0]["labeled"] == 1000  # the last_1000 window
        assert [m["name"] for m in runs["degradation"]["models"]] == [WAF]
        tuned = next(r for r in runs["tuning"]["runs"] if r["model"] == WAF)
        assert tuned["samples"] == n
        assert runs["cleanup"]["models"] == 3

        # and beat (its leader lock and schedule in the cluster) sends every job on time
        beat_runs_every_job(stack, tmp_path)
        # the topology, as `cache health` and `verify-systems` report it
        health = mlops_json(stack.env, "cache", "health")["topology"]
        assert health["kind"] == "cluster" and health["problems"] == []
        assert sorted(n["slots"] for n in health["nodes"]) == [5461, 5461, 5462]
        assert "primaries without a replica" in health["warnings"][0]
        # (it fails: no beat, no dedicated pools; the topology is what is looked at here)
        verify = mlops(stack.env, "verify-systems", "--timeout", "10", "--json")
        checks = json.loads(verify.stdout)["checks"]
        topology_check = next(c for c in checks if c["name"] == "store topology")
        assert topology_check["ok"] and topology_check["detail"].startswith(
            "cluster: 3 primaries, 0 replicas")
    finally:
        worker.stop()
    # every key of a model in that model's slot: a store that spans the three nodes
    store = stack.store()
    slots = {store.keyslot(k) for k in store.scan_iter(match=f"mlops:{{{WAF}}}:*")}
    assert len(slots) == 1
    nodes = {store.get_node_from_key(k).name for m in (WAF, N1, "queue-anomaly")
             for k in [keys.meta(m)]}
    assert len(nodes) >= 2, "the models should spread over the nodes"


def beat_runs_every_job(stack: Stack, log_dir: Path) -> None:
    """A beat on a compressed schedule: every job runs again, through its queue, and none
    fails."""
    beat = BeatProcess(stack.env["REDIS_URL"], log_dir, **stack.extra, **COMPRESSED).start()
    try:
        def every_job_ran_again() -> bool:
            jobs = mlops_json(stack.env, "scheduler", "status")["jobs"]
            return all(j["runs"] >= 2 and j["consecutive_failures"] == 0 for j in jobs)
        wait_for(every_job_ran_again, timeout=60, interval=1, what="beat's runs")
    finally:
        beat.stop()


@pytest.mark.slow
def test_rabbitmq_and_a_cluster_lose_nothing_when_a_worker_is_killed(
        rabbit_cluster: Stack, tmp_path: Path) -> None:
    """Given 40 batches on RabbitMQ, when the worker is SIGKILLed while it works through them
    and a new one starts, then RabbitMQ delivers again what the dead worker held and the
    counts are exact: nothing lost, nothing counted twice."""
    stack = rabbit_cluster
    first = stack.worker(tmp_path, "--concurrency", "2").start()
    second = None
    try:
        rng = np.random.default_rng(5)
        batches, size = 40, 5000
        with stack.client() as client:
            for _ in range(batches):
                client.record_batch(N1, rng.random(size), actual=rng.random(size) < 0.5)
            assert client.flush(60)
        wait_for(lambda: stack.totals(N1).get("n", 0) >= 3 * size, timeout=60,
                 what="some batches processed")
        first.kill()
        at_kill = stack.totals(N1).get("n", 0)
        assert at_kill < batches * size, "the worker finished before it could be killed"
        second = stack.worker(tmp_path, "--concurrency", "2").start()
        wait_for(lambda: stack.totals(N1).get("n") == batches * size, timeout=120,
                 interval=0.5, what="every batch counted")
        time.sleep(3)  # a late redelivery would show up as a double count
        final = stack.totals(N1)
        assert final["n"] == batches * size and final["labeled"] == batches * size
        assert journal.pending(stack.store(), N1) == 0
    finally:
        for w in (first, second):
            if w:
                w.stop()


@pytest.fixture
def sentinel_stack(tmp_path: Path) -> Iterator[tuple[Stack, SentinelSet]]:
    """A master and a replica behind three sentinels, as the store and the broker; the
    catalogue registered."""
    sentinels = SentinelSet(tmp_path / "sentinel").start()
    try:
        stack = Stack(None, tmp_path / "data", **sentinels.env())
        result = mlops(stack.env, "register-all-models")
        assert result.returncode == 0, result.stderr
        yield stack, sentinels
    finally:
        sentinels.stop()


@pytest.mark.slow
def test_a_failover_mid_stream_counts_every_event_once(
        sentinel_stack: tuple[Stack, SentinelSet], tmp_path: Path) -> None:
    """Given a stream through Sentinel (store and broker), when the master is SIGKILLed
    mid-stream, then a replica is promoted, the client, the worker and the journal carry on
    against it, and every event is counted exactly once."""
    stack, sentinels = sentinel_stack
    worker = stack.worker(tmp_path, "--concurrency", "2",
                          MLOPS_VISIBILITY_TIMEOUT_S="5", MLOPS_JOURNAL_REPLAY_S="5").start()
    try:
        rng = np.random.default_rng(9)
        batches, size = 40, 2000
        old_master = sentinels.master()
        before = mlops_json(stack.env, "cache", "health")["topology"]
        assert before["kind"] == "sentinel" and before["problems"] == []
        assert before["nodes"][0] == {"role": "master", "address": f"127.0.0.1:{old_master[1]}",
                                      "flags": "master", "replicas": 1, "other_sentinels": 2,
                                      "quorum": 2}
        with stack.client() as client:
            for i in range(batches):
                client.record_batch(N1, rng.random(size), actual=rng.random(size) < 0.5)
                if i == batches // 2:
                    wait_for(lambda: stack.totals(N1).get("n", 0) > 0, timeout=60,
                             what="the first batches counted")
                    sentinels.kill_master()
                time.sleep(0.05)
            assert client.flush(120)
        wait_for(lambda: sentinels.master() != old_master, timeout=60, what="a failover")
        # the journal covers a message lost with the old master: replay as beat would
        deadline = time.monotonic() + 120
        while stack.totals(N1).get("n") != batches * size:
            assert time.monotonic() < deadline, f"only {stack.totals(N1).get('n')} counted"
            mlops(stack.env | {"MLOPS_JOURNAL_REPLAY_S": "5"}, "run", "monitoring", "--wait",
                  "--timeout", "30")
            time.sleep(1)
        time.sleep(6)  # a late redelivery (visibility timeout 5 s) would count twice
        final = stack.totals(N1)
        assert final["n"] == batches * size and final["labeled"] == batches * size
        assert journal.pending(stack.store(), N1) == 0
        after = mlops_json(stack.env, "cache", "health")["topology"]
        assert after["nodes"][0]["address"] == f"127.0.0.1:{sentinels.master()[1]}"
        assert after["problems"] == []
        assert after["warnings"] == [("0 replicas, fewer than MLOPS_REDIS_WAIT_REPLICAS 1: "
                                      "writes wait for the ones there are")]
    finally:
        worker.stop()


def test_rabbitmq_queue_depths_reach_metrics_and_readiness(redis_url: str, tmp_path: Path) -> None:
    """With RabbitMQ as broker, /metrics' queue depths and /health/ready ask RabbitMQ: a batch
    sent with no worker waits in mlops.events; the unacknowledged count, which AMQP does not
    tell, is left out rather than reported as 0."""
    from mlops_tasks.health.queues import AmqpBroker, broker_for, queue_depths
    from mlops_tasks.server.metrics import queue_metrics
    from mlops_tasks.server.probes import Probes

    with rabbitmq_vhost() as amqp:
        stack = Stack(redis_url, tmp_path / "data", CELERY_BROKER_URL=amqp)
        assert mlops(stack.env, "register-all-models").returncode == 0
        broker = broker_for(amqp)
        assert isinstance(broker, AmqpBroker)
        assert queue_depths(broker).waiting == {"mlops.events": 0, "mlops.monitoring": 0,
                                                "mlops.tuning": 0}  # not declared yet: 0
        with stack.client() as client:
            client.record_batch(N1, np.full(20, 0.5))
            assert client.flush(30)
        depths = queue_depths(broker)
        assert depths.waiting["mlops.events"] == 1 and depths.unacked is None
        names = {f.name for f in queue_metrics(depths)}
        assert names == {"mlops_queue_depth"}
        probes = Probes(settings=stack.settings, client=stack.store(), broker=broker)
        assert probes.ready()
        assert not Probes(settings=stack.settings, client=stack.store(),
                          broker=AmqpBroker("amqp://guest:guest@127.0.0.1:1//", 1.0)).ready()
