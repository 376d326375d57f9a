"""Real servers for the topology tests: a private RabbitMQ virtual host, a three-node Redis
Cluster and a Redis master with a replica watched by three sentinels, each made of real
``redis-server`` processes (started here) or the machine's RabbitMQ (skipped with a reason when
there is none)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from mlops_tasks.embedded import find_server_binary

from .redis_server import free_port

RABBITMQ = ("127.0.0.1", 5672)
SLOTS = 16384


def rabbitmq_missing() -> str | None:
    """Why the RabbitMQ tests cannot run here, or None."""
    try:
        with socket.create_connection(RABBITMQ, timeout=2):
            pass
    except OSError:
        return f"no RabbitMQ listens on {RABBITMQ[0]}:{RABBITMQ[1]} (apt install rabbitmq-server)"
    if not shutil.which("rabbitmqctl"):
        return "rabbitmqctl is not on PATH: a private virtual host cannot be made"
    probe = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True,
                           timeout=60, check=False)
    if probe.returncode != 0:
        return f"rabbitmqctl cannot manage this RabbitMQ: {probe.stderr.strip()[:200]}"
    return None


@contextlib.contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A fresh virtual host for guest (its queues, exchanges and messages), deleted after;
    yields its amqp:// URL."""
    reason = rabbitmq_missing()
    if reason:
        pytest.skip(reason)
    vhost = f"mlops-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True,
                   timeout=60)
    try:
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*",
                        ".*", ".*"], check=True, capture_output=True, timeout=60)
        yield f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{vhost}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True,
                       timeout=60, check=False)


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def _wait_ping(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping():
                return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too and below 65536."""
    for _ in range(1000):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisClusterServers:
    """Three (``n``) primaries, no replicas, the slots split evenly; made with CLUSTER
    ADDSLOTSRANGE and MEET (no redis-cli needed)."""

    def __init__(self, folder: Path, n: int = 3) -> None:
        self.folder = folder
        self.ports = [free_cluster_port() for _ in range(n)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """A node's URL: the cluster client finds the others."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> RedisClusterServers:
        try:
            return self._start()
        except BaseException:
            self.stop()  # nothing left running behind a failed start
            raise

    def _start(self) -> RedisClusterServers:
        for port in self.ports:
            folder = self.folder / str(port)
            folder.mkdir(parents=True, exist_ok=True)
            self.procs.append(_spawn(
                [find_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf"),
                 "--dir", str(folder), "--save", "", "--appendonly", "yes"],
                folder / "redis.log"))
        for port in self.ports:
            _wait_ping(port)
        n = len(self.ports)
        nodes = [redis.Redis(host="127.0.0.1", port=p, decode_responses=True) for p in self.ports]
        for i, node in enumerate(nodes):
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", i * SLOTS // n,
                                 (i + 1) * SLOTS // n - 1)
        for port in self.ports[1:]:
            nodes[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        deadline = time.monotonic() + 30
        while not all(node.cluster("info")["cluster_state"] == "ok"
                      and int(node.cluster("info")["cluster_known_nodes"]) == n
                      for node in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not form within 30 s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


class SentinelSet:
    """A master, one replica and three sentinels (quorum 2) that fail over within seconds."""

    MASTER = "mlops-master"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def sentinels_setting(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)

    def env(self) -> dict[str, str]:
        """The settings of a process whose store (and broker) is reached through them."""
        return {"MLOPS_REDIS_SENTINELS": self.sentinels_setting,
                "MLOPS_REDIS_SENTINEL_MASTER": self.MASTER}

    def _server(self, port: int, *extra: str) -> None:
        folder = self.folder / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        self.servers[port] = _spawn(
            [find_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir",
             str(folder), "--save", "", "--appendonly", "yes", *extra], folder / "redis.log")
        _wait_ping(port)

    def start(self) -> SentinelSet:
        try:
            return self._start()
        except BaseException:
            self.stop()  # nothing left running behind a failed start
            raise

    def _start(self) -> SentinelSet:
        self._server(self.master_port)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        for port in self.sentinel_ports:
            conf = self.folder / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.folder}\n"
                f"sentinel monitor {self.MASTER} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                f"sentinel failover-timeout {self.MASTER} 5000\n"
                f"sentinel parallel-syncs {self.MASTER} 1\n")
            self.sentinels.append(_spawn([find_server_binary(), str(conf), "--sentinel"],
                                         self.folder / f"sentinel-{port}.log"))
        for port in self.sentinel_ports:
            _wait_ping(port)
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the replica or the sentinels not ready within 30 s")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        """The replica in sync, and each sentinel knowing the others and the replica (else a
        failover soon after the start finds no quorum)."""
        if self.replicas_in_sync() < 1:
            return False
        for port in self.sentinel_ports:
            sentinel = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
            others = sentinel.execute_command("SENTINEL", "SENTINELS", self.MASTER)
            replicas = sentinel.execute_command("SENTINEL", "REPLICAS", self.MASTER)
            if len(others) < len(self.sentinel_ports) - 1 or not replicas:
                return False
        return True

    def master(self) -> tuple[str, int]:
        """The master the sentinels name now."""
        sentinel = redis.Redis(host="127.0.0.1", port=self.sentinel_ports[0],
                               decode_responses=True)
        host, port = sentinel.sentinel_get_master_addr_by_name(self.MASTER)
        return str(host), int(port)

    def replicas_in_sync(self) -> int:
        master = redis.Redis(host="127.0.0.1", port=self.master()[1], decode_responses=True)
        info = master.info("replication")
        return int(info.get("connected_slaves", 0))

    def kill_master(self) -> int:
        """SIGKILL the current master; return its port."""
        port = self.master()[1]
        os.kill(self.servers[port].pid, signal.SIGKILL)
        self.servers[port].wait(10)
        return port

    def stop(self) -> None:
        for proc in [*self.sentinels, *self.servers.values()]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.sentinels, *self.servers.values()]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
