"""The store's topology as its servers report it, with what is wrong with it.

    standalone  the server's role (a replica refuses writes) and its connected replicas
    sentinel    what each sentinel says of the master (address, state, replicas, other
                sentinels, quorum); problems: a sentinel that does not answer, a master down,
                fewer sentinels than the quorum; warned: fewer replicas than
                MLOPS_REDIS_WAIT_REPLICAS
    cluster     every node (address, primary or replica, slots, failure flags) from CLUSTER
                NODES and the cluster's state; problems: a state other than ok, a failed node,
                slots no node serves; warned: a primary without a replica (its slots go down
                with it)

Shown by `mlops cache health`, `mlops verify-systems`, `mlops config check` and ``/health``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import redis
from redis.cluster import RedisCluster

from ..connection import SentinelUrl, is_cluster, topology, topology_url
from ..settings import Settings

SLOTS = 16384


@dataclass(frozen=True)
class Topology:
    kind: str  # standalone | sentinel | cluster
    nodes: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the store cannot work as it should
    warnings: list[str] = field(default_factory=list)  # it works, with less to fall back on

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: the kind, its nodes, and the first problem."""
        if self.kind == "cluster":
            primaries = sum(1 for n in self.nodes if n["role"] == "primary")
            text = f"cluster: {primaries} primaries, {len(self.nodes) - primaries} replicas"
        elif self.kind == "sentinel":
            master = next((n for n in self.nodes if n["role"] == "master"), None)
            replicas = master["replicas"] if master else 0
            where = master["address"] if master else "no master"
            text = f"sentinel: master {where}, {replicas} replicas"
        else:
            node = self.nodes[0] if self.nodes else {}
            text = (f"standalone: {node.get('role', '?')}, "
                    f"{node.get('replicas', 0)} replicas")
        notes = [*self.problems, *self.warnings]
        return text + (f"; {notes[0]}" if notes else "")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": self.ok, "nodes": self.nodes,
                "problems": self.problems, "warnings": self.warnings}


def read_topology(client: redis.Redis, settings: Settings) -> Topology:
    """The topology of the store that ``client`` (made from these settings) reaches."""
    url = topology_url(settings, settings.redis_url) or ""
    kind = topology(url)
    if kind == "cluster":
        return _cluster(client)
    if kind == "sentinel":
        return _sentinel(url, settings)
    return _standalone(client)


def configured(settings: Settings) -> str:
    """The topology the settings ask for, without connecting: for `mlops config check`."""
    from ..celery_config import broker_kind  # noqa: PLC0415 - kombu types, on first use

    broker = settings.celery_broker_url
    via = ("the store's Redis" if broker is None else
           {"amqp": "RabbitMQ", "sentinel": "Redis through Sentinel"}.get(
               broker_kind(broker), "a Redis of its own"))
    if settings.redis_cluster:
        store = "a Redis Cluster (REDIS_URL names a node)"
    elif settings.redis_sentinels:
        count = len(settings.redis_sentinels.split(","))
        store = (f"the master {settings.redis_sentinel_master!r} named by {count} sentinels, "
                 f"writes waiting for {settings.redis_wait_replicas} replicas")
    elif settings.redis_url:
        store = "one Redis (REDIS_URL)"
    else:
        store = "the embedded Redis" + (" with ACLs" if settings.redis_acl else "")
    return f"store: {store}; broker: {via}"


def _standalone(client: redis.Redis) -> Topology:
    role = client.execute_command("ROLE")  # type: ignore[no-untyped-call]
    name = _text(role[0])
    if name == "master":
        node = {"role": "master", "replicas": len(role[2])}
        return Topology("standalone", [node])
    node = {"role": name, "master": f"{_text(role[1])}:{role[2]}", "replicas": 0}
    return Topology("standalone", [node], [
        (f"the server is a {name} of {node['master']}: it refuses writes (point REDIS_URL at "
         "the master, or use MLOPS_REDIS_SENTINELS)")])


def _sentinel(url: str, settings: Settings) -> Topology:
    parts = SentinelUrl.parse(url)
    nodes: list[dict[str, Any]] = []
    problems: list[str] = []
    master: dict[str, Any] | None = None
    replica_nodes: list[dict[str, Any]] = []
    for host, port in parts.sentinels:
        address = f"{host}:{port}"
        sentinel = redis.Redis(host=host, port=port, password=parts.sentinel_password,
                               socket_timeout=2, socket_connect_timeout=2,
                               decode_responses=True)
        try:
            state = cast("dict[str, Any]", sentinel.sentinel_master(parts.master))
            replicas = cast("list[dict[str, Any]]",
                            sentinel.sentinel_slaves(parts.master) if master is None else [])
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            nodes.append({"role": "sentinel", "address": address, "ok": False})
            problems.append(f"sentinel {address} does not answer: {_first_line(exc)}")
            continue
        except redis.ResponseError as exc:
            nodes.append({"role": "sentinel", "address": address, "ok": False})
            problems.append(f"sentinel {address} does not watch {parts.master!r}: "
                            f"{_first_line(exc)}")
            continue
        finally:
            sentinel.close()
        nodes.append({"role": "sentinel", "address": address, "ok": True})
        if master is None:
            # replicas that are up: a dead master stays listed as a replica until it returns
            up = [f"{r.get('ip')}:{r.get('port')}" for r in replicas
                  if not _down(str(r.get("flags", "")))]
            master = {"role": "master", "address": f"{state.get('ip')}:{state.get('port')}",
                      "flags": str(state.get("flags", "")), "replicas": len(up),
                      "other_sentinels": int(state.get("num-other-sentinels", 0)),
                      "quorum": int(state.get("quorum", 0))}
            replica_nodes = [{"role": "replica", "address": a} for a in up]
    if master is None:
        return Topology("sentinel", nodes, problems or ["no sentinel answered"])
    nodes[:0] = [master, *replica_nodes]
    if _down(master["flags"]):
        problems.append(f"the master {master['address']} is down ({master['flags']})")
    if master["other_sentinels"] + 1 < master["quorum"]:
        problems.append(f"{master['other_sentinels'] + 1} sentinels know the master, fewer "
                        f"than the quorum {master['quorum']}: no failover can happen")
    warnings = []
    if master["replicas"] < settings.redis_wait_replicas:
        warnings.append(f"{master['replicas']} replicas, fewer than MLOPS_REDIS_WAIT_REPLICAS "
                        f"{settings.redis_wait_replicas}: writes wait for the ones there are")
    return Topology("sentinel", nodes, problems, warnings)


def _cluster(client: redis.Redis) -> Topology:
    if not is_cluster(client):
        return Topology("cluster", [], [("MLOPS_REDIS_CLUSTER is set but the client is not "
                                         "a cluster client")])
    cluster = cast("RedisCluster", client)
    info = cluster.cluster_info()
    nodes_text = cluster.execute_command("CLUSTER NODES")  # type: ignore[no-untyped-call]
    nodes = _parse_nodes(nodes_text)
    problems: list[str] = []
    state = info.get("cluster_state") if isinstance(info, dict) else None
    if state != "ok":
        problems.append(f"the cluster's state is {state!r}, not 'ok'")
    failed = [n["address"] for n in nodes if n["failed"]]
    if failed:
        problems.append(f"failed nodes: {', '.join(failed)}")
    served = sum(n["slots"] for n in nodes if n["role"] == "primary")
    if served < SLOTS:
        problems.append(f"{SLOTS - served} of {SLOTS} slots have no node")
    primaries_with_replicas = {n["master_id"] for n in nodes if n["role"] == "replica"}
    lonely = [n["address"] for n in nodes
              if n["role"] == "primary" and n["id"] not in primaries_with_replicas]
    warning = f"primaries without a replica (their slots go down with them): {', '.join(lonely)}"
    warnings = [warning] if lonely else []
    return Topology("cluster", nodes, problems, warnings)


def _down(flags: str) -> bool:
    return any(f in flags.split(",") for f in ("s_down", "o_down", "disconnected"))


def _parse_nodes(text: Any) -> list[dict[str, Any]]:
    """CLUSTER NODES as one dict per node (redis-py's cluster client may answer it parsed,
    per node, or as the raw text)."""
    if isinstance(text, dict):  # parsed by redis-py: address -> fields
        out = []
        for address, f in text.items():
            flags = str(f.get("flags", ""))
            slots = sum(int(b) - int(a) + 1 for a, b in
                        (s if len(s) == 2 else (s[0], s[0])
                         for s in f.get("slots", [])))
            out.append({"id": f.get("node_id"), "address": address.split("@")[0],
                        "role": "primary" if "master" in flags else "replica",
                        "master_id": None if f.get("master_id") in (None, "-")
                        else f.get("master_id"), "slots": slots,
                        "failed": "fail" in flags and "fail?" not in flags,
                        "connected": bool(f.get("connected", True))})
        return sorted(out, key=lambda n: n["address"])
    out = []
    for line in _text(text).splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = fields[2]
        slots = 0
        for piece in fields[8:]:
            if piece.startswith("["):
                continue  # a slot being migrated
            a, _, b = piece.partition("-")
            slots += int(b or a) - int(a) + 1
        out.append({"id": fields[0], "address": fields[1].split("@")[0],
                    "role": "primary" if "master" in flags else "replica",
                    "master_id": None if fields[3] == "-" else fields[3], "slots": slots,
                    "failed": "fail" in flags.split(","),
                    "connected": fields[7] == "connected"})
    return sorted(out, key=lambda n: n["address"])


def key_count(client: redis.Redis) -> int:
    """Keys in the store: DBSIZE, summed over the primaries of a cluster."""
    if is_cluster(client):
        return int(cast("RedisCluster", client).dbsize(target_nodes=RedisCluster.PRIMARIES))
    return int(client.dbsize())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
