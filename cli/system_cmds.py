"""System commands: configuration check, Redis health, the embedded Redis server."""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import click
import redis

from mlops_tasks import keys
from mlops_tasks.connection import call, connect, embedded_acl_file, embedded_redis
from mlops_tasks.durations import parse_duration
from mlops_tasks.embedded import EmbeddedRedis
from mlops_tasks.errors import ConflictError
from mlops_tasks.health.topology import key_count, read_topology
from mlops_tasks.registry import Registry
from mlops_tasks.registry.store import CacheEntry
from mlops_tasks.reports.config_diff import config_diff
from mlops_tasks.roles import OPERATOR
from mlops_tasks.settings import check_env, describe, mask_url

from .context import EXIT_FAILURE, App, json_option, pass_app
from .output import emit, fmt, table


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@json_option
def config_check(as_json: bool) -> None:
    """Print the effective configuration (secrets masked) and every problem; exit 1 if any."""
    settings, problems = check_env()
    rows = describe(settings)
    for row in rows:
        bad = [p for p in problems if p.startswith(f"{row['variable']}=")]
        row["problem"] = bad[0] if bad else None
        if bad:
            row["value"] = None
            row["source"] = "environment (invalid)"
    from mlops_tasks.health.topology import configured  # noqa: PLC0415 - kombu, on first use

    doc = {"ok": not problems, "topology": configured(settings), "settings": rows,
           "problems": problems}

    def human() -> str:
        out = table(["variable", "value", "source"],
                    [[r["variable"], r["value"], r["source"]] for r in rows])
        out += f"\n\ntopology: {doc['topology']}"
        if problems:
            out += "\n\n" + "\n".join(f"problem: {p}" for p in problems)
        else:
            out += "\n\nno problems found"
        return out
    emit(as_json, doc, human)
    if problems:
        sys.exit(EXIT_FAILURE)


@config_group.command("diff")
@click.argument("name", required=False)
@click.option("--since", metavar="DURATION",
              help='Only changes this recent: 7d, 24h, "1 week ago" (default: all).')
@json_option
@pass_app
def config_diff_cmd(app: App, name: str | None, since: str | None, as_json: bool) -> None:
    """Configuration changes from the audit trail: before and after per field, with actor."""
    since_ts = None if since is None else app.services.clock() - parse_duration(since, "--since")
    diff = config_diff(app.services.registry, name, since_ts)

    def human() -> str:
        if not diff.changes:
            return "no configuration changes" + (f" since {diff.since}" if diff.since else "")
        rows: list[list[Any]] = []
        for c in diff.changes:
            head = [c.at, c.model, c.version, c.revision, c.action, c.actor]
            for i, f in enumerate(c.fields):
                rows.append([*(head if i == 0 else [""] * len(head)), f.field, f.before, f.after])
            if not c.fields:
                rows.append([*head, "-", None, None])
        return table(
            ["at", "model", "version", "rev", "action", "actor", "field", "before", "after"], rows)
    emit(as_json, diff.to_dict(), human)


@click.group("cache")
def cache_group() -> None:
    """Redis holding the registry and metrics."""


def _key_counts(client: redis.Redis) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in client.scan_iter(match=keys.ALL, count=1000):
        fam = keys.family(key)
        counts[fam] = counts.get(fam, 0) + 1
    return dict(sorted(counts.items()))


@cache_group.command("health")
@json_option
@pass_app
def cache_health(app: App, as_json: bool) -> None:
    """Ping latency, memory, persistence, key counts and registry read hit rate.

    Exits 1 when Redis is unreachable."""
    url = app.redis_url
    client = connect(url)
    latencies = []
    for _ in range(5):
        start = time.perf_counter()
        call(url, client.ping)
        latencies.append((time.perf_counter() - start) * 1000)
    info = client.info()
    save_policy = client.config_get("save").get("save", "")
    persistence = "+".join(
        m for m, on in (("aof", int(info.get("aof_enabled", 0))), ("rdb", bool(save_policy)))
        if on) or "none"
    stats = Registry(client, app.settings).cache_stats()
    found = read_topology(client, app.settings)
    lookups = stats["hits"] + stats["misses"]
    doc: dict[str, Any] = {  # the --json document
        "url": mask_url(url),
        "embedded": not app.settings.redis_url,
        "redis_version": info.get("redis_version"),
        "ping_ms": round(statistics.median(latencies), 3),
        "memory": {"used_bytes": info.get("used_memory"),
                   "used_human": info.get("used_memory_human"),
                   "peak_human": info.get("used_memory_peak_human"),
                   "maxmemory_bytes": info.get("maxmemory"),
                   "maxmemory_policy": info.get("maxmemory_policy")},
        "persistence": persistence,
        "topology": found.to_dict(),
        "keys": {"total": key_count(client), "by_family": _key_counts(client)},
        "registry_cache": {"hits": stats["hits"], "misses": stats["misses"],
                           "hit_rate": round(stats["hits"] / lookups, 4) if lookups else None},
    }

    def human() -> str:
        m = doc["memory"]
        rc = doc["registry_cache"]
        hit_rate = None if rc["hit_rate"] is None else rc["hit_rate"] * 100
        rows = [
            ["url", doc["url"] + (" (embedded)" if doc["embedded"] else "")],
            ["redis version", doc["redis_version"]],
            ["ping", f"{doc['ping_ms']:.3f} ms"],
            ["memory used", f"{m['used_human']} (peak {m['peak_human']})"],
            ["persistence", doc["persistence"]],
            ["topology", found.summary()],
            *([f"node {n.get('address', '')}", _node_text(n)] for n in found.nodes),
            ["keys", f"{doc['keys']['total']} total; " + ", ".join(
                f"{k} {v}" for k, v in doc["keys"]["by_family"].items())],
            ["registry reads",
             f"{rc['hits']} hits, {rc['misses']} misses, hit rate {fmt(hit_rate)}%"],
        ]
        out = table(["check", "value"], rows)
        if persistence == "none":
            out += "\nwarning: Redis keeps nothing on disk; the registry is lost if it restarts"
        out += "".join(f"\nproblem: {p}" for p in found.problems)
        out += "".join(f"\nwarning: {w}" for w in found.warnings)
        return out
    emit(as_json, doc, human)
    if found.problems:
        sys.exit(EXIT_FAILURE)


def _node_text(node: dict[str, Any]) -> str:
    """A node of the topology in one cell: its role and what matters for that role."""
    role = node.get("role")
    if role == "primary":
        return f"primary, {node['slots']} slots" + (", FAILED" if node["failed"] else "")
    if role == "replica":
        return "replica" + (", FAILED" if node["failed"] else "")
    if role == "sentinel":
        return "sentinel" + ("" if node.get("ok") else ", not answering")
    if role == "master" and "quorum" in node:
        return (f"master ({node['flags']}), {node['replicas']} replicas, "
                f"{node['other_sentinels'] + 1} sentinels, quorum {node['quorum']}")
    return f"{role}, {node.get('replicas', 0)} replicas"


def _cache_report(entries: list[CacheEntry], verb: str, as_json: bool) -> None:
    doc = {verb: sum(1 for e in entries if e.status in {"cleared", "cached"}),
           "entries": [e.to_dict() for e in entries]}
    emit(as_json, doc, lambda: table(
        ["model", "target", "status", "version", "revision"],
        [[e.model, e.target, e.status, e.version, e.revision] for e in entries])
        + f"\n\n{doc[verb]} entr{'y' if doc[verb] == 1 else 'ies'} {verb}")


@cache_group.command("clear")
@click.option("--model", metavar="M", help="Only this model (default: every model).")
@json_option
@pass_app
def cache_clear(app: App, model: str | None, as_json: bool) -> None:
    """Delete the resolved-configuration read cache (never a registry record)."""
    _cache_report(app.services.registry.clear_cache(model), "cleared", as_json)


@cache_group.command("warmup")
@click.option("--model", metavar="M", help="Only this model (default: every model).")
@json_option
@pass_app
def cache_warmup(app: App, model: str | None, as_json: bool) -> None:
    """Resolve and cache every model's production and latest configurations."""
    _cache_report(app.services.registry.warm_cache(model), "cached", as_json)


@click.group("redis")
def redis_group() -> None:
    """The embedded Redis used when REDIS_URL is not set."""


def _embedded(app: App) -> EmbeddedRedis:
    """The embedded Redis, logged in as the operator when it enforces ACLs."""
    return embedded_redis(app.settings, OPERATOR)


@redis_group.command("status")
@json_option
@pass_app
def redis_status(app: App, as_json: bool) -> None:
    """Whether the embedded Redis runs, where, and with which process."""
    server = _embedded(app)
    running = server.is_running()
    doc = {"in_use": not app.settings.redis_url, "running": running,
           "url": server.url, "acl": app.settings.redis_acl, "data_dir": str(server.data_dir),
           "pid": server.pid() if running else None}
    emit(as_json, doc, lambda: table(["field", "value"], [[k, v] for k, v in doc.items()]))


@redis_group.command("start")
@json_option
@pass_app
def redis_start(app: App, as_json: bool) -> None:
    """Start the embedded Redis (commands also start it on demand)."""
    server = _embedded(app)
    server.ensure_running(acl_file=embedded_acl_file(app.settings))
    url = server.url  # without the login
    acl = " with ACLs (MLOPS_REDIS_ACL)" if server.login else ""
    emit(as_json, {"running": True, "url": url, "acl": server.login is not None,
                   "pid": server.pid()},
         f"embedded Redis running at {url}{acl} (pid {server.pid()})")


@redis_group.command("stop")
@json_option
@pass_app
def redis_stop(app: App, as_json: bool) -> None:
    """Stop the embedded Redis cleanly, flushing its append-only file."""
    if app.settings.redis_url:
        raise ConflictError("REDIS_URL is set: the embedded Redis is not in use")
    stopped = _embedded(app).stop()
    emit(as_json, {"stopped": stopped},
         "embedded Redis stopped" if stopped else "embedded Redis was not running")


@redis_group.command("acl")
@click.option("--format", "fmt_", type=click.Choice(["file", "commands"]), default="file",
              show_default=True,
              help="An ACL file (aclfile in redis.conf, or ACL LOAD), or ACL SETUSER commands "
                   "for redis-cli (a managed Redis).")
@json_option
@pass_app
def redis_acl(app: App, fmt_: str, as_json: bool) -> None:
    """Print the Redis users of the detector, worker and operator roles (passwords from
    MLOPS_REDIS_<ROLE>_PASSWORD, written as their SHA-256 only) and the default user off."""
    from mlops_tasks import acl  # noqa: PLC0415 - redis-py, on first use

    users = acl.users(acl.passwords(app.settings))
    text = acl.acl_file(users) if fmt_ == "file" else acl.setuser_commands(users)
    emit(as_json, {"format": fmt_, "users": [u.to_dict() for u in users], "text": text},
         text.rstrip("\n"))


def register(group: click.Group) -> None:
    for command in (config_group, cache_group, redis_group):
        group.add_command(command)
