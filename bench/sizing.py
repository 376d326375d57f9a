"""Sizing, measured (issue 16): Redis commands, bytes and CPU per batch and per event of the
ingest path, Redis memory per model-day and per model in steady state, and the scaling model
they give, against a private redis-server.

    .venv/bin/python bench/sizing.py [--batch-sizes 500,10000] [--events 400000] \\
        [--rates 10,0.1] [--pending 200000] [--concurrency 2] [--node-memory-gb 8] \\
        [--cpu-share 0.5] [--skip-worker]

Part a, per batch size B (2: a model at 10 events/s from one client process, which sends every
200 ms; 500: the client's batch size; 10,000: the largest message), ``--events`` labeled events
of n1-detector in batches of B (at most ``--max-batches`` batches):

  a1. client: ``MonitoringClient.record_batch`` of B events, no worker running (the store's
      Redis is the broker: journal entry and message in one MULTI/EXEC);
  a2. the messages are taken off the queue (not measured);
  a3. store: the worker's ``Ingestor.ingest_predictions`` applies them in this process (bodies
      decoded beforehand), one EVALSHA of ``ingest.lua`` a batch;
  a4. end to end: the same traffic through ``mlops worker --concurrency N`` (Redis broker):
      the client, kombu's consumption and acknowledgement, Celery's task events and the store.

Each step reads redis-server's ``INFO commandstats`` (calls per command, the commands run
inside Lua scripts included), ``INFO stats`` ``total_net_input_bytes`` /
``total_net_output_bytes`` and its CPU time (``/proc/<pid>/stat``, user + system) before and
after. Taken out: the readings' own cost (measured), the waiting loop's probes in a4 (measured
per probe) and the worker's idle traffic and CPU in a4 (heartbeats, BRPOP timeouts: measured
for 3 s before, per second). The commands this process sends are also counted from the RESP
bytes redis-py writes, so a1 and a3 show which commands cross the network and which a script
runs.

Part b, memory: for each of ``--rates`` (events/s, labeled), a copy of n1-detector gets one day
of traffic: a ``record_batch`` a minute with that minute's events (timestamps in the minute),
applied by an ``Ingestor`` whose clock follows the events, over the UTC day after today (every
bucket's EXPIREAT is then in the future: the whole day stays). ``used_memory`` before and after,
and ``MEMORY USAGE`` of every key by family: minute, hour and day buckets (``agg`` hash and
``hist`` score histograms), the per-version ring of recent outcomes, totals, counters, the
producer's watermark, and the registry's records. Steady state with retention
(``MLOPS_RETENTION_DAYS``, default 90; timebuckets.py: minute buckets kept 3 h, hour buckets
8 days, day buckets the retention) = live buckets of each granularity x bytes per bucket + the
fixed keys. Predictions awaiting their label are counted apart: ``--pending`` unlabeled
predictions applied the same way, bytes each.

Part c prints the scaling model from a and b (see ``scaling_model``). About 30 s by default.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis
from _harness import (
    Bench,
    WorkerProc,
    log,
    machine_facts,
    phase,
    print_json,
    print_table,
    run_main,
    totals,
    tree_cpu_s,
    wait_models_registered,
    wait_until,
)

MODEL = "n1-detector"
QUEUE = "mlops.events"
UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages
DAY_S = 86400
GIB = 2**30
IDLE_S = 3.0  # the worker's idle traffic is measured this long
PROBE_INTERVAL_S = 0.1


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", default="2,500,10000",
                   help="events per batch of part a (default 2,500,10000: a model at 10 "
                        "events/s with the client's 200 ms flush, the client's batch size, a "
                        "message's limit)")
    p.add_argument("--events", type=int, default=400_000,
                   help="labeled events per batch size in part a (default 400,000)")
    p.add_argument("--max-batches", type=int, default=2_000,
                   help="at most this many batches per batch size (default 2,000)")
    p.add_argument("--rates", default="10,0.1",
                   help="labeled events/s of the model-days of part b (default 10,0.1)")
    p.add_argument("--pending", type=int, default=200_000,
                   help="unlabeled predictions for the bytes per pending prediction "
                        "(default 200,000; 0 skips)")
    p.add_argument("--concurrency", type=int, default=2, help="worker processes in a4")
    p.add_argument("--node-memory-gb", type=float, default=8.0,
                   help="memory a Redis node may give the dataset (maxmemory) in the scaling "
                        "model (default 8)")
    p.add_argument("--cpu-share", type=float, default=0.5,
                   help="share of redis-server's core planned for ingest; the rest is for "
                        "dashboards, scrapes, jobs and bursts (default 0.5)")
    p.add_argument("--skip-worker", action="store_true", help="skip a4 (no worker process)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="give up waiting for a step after this many seconds (default 120)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs)")
    args = p.parse_args()
    try:
        args.batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]
        args.rates = [float(x) for x in args.rates.split(",") if x.strip()]
    except ValueError as exc:
        p.error(f"--batch-sizes/--rates: {exc}")
    if not all(1 <= b <= 10_000 for b in args.batch_sizes) or not args.batch_sizes:
        p.error("--batch-sizes: each from 1 to 10,000 (a message's limit)")
    if not all(0 < r <= 1000 for r in args.rates):
        p.error("--rates: each above 0 and at most 1,000 events/s")
    if args.events < 1 or args.max_batches < 1 or args.pending < 0 or args.concurrency < 1:
        p.error("--events, --max-batches and --concurrency must be >= 1, --pending >= 0")
    if not 0 < args.cpu_share <= 1 or args.node_memory_gb <= 0:
        p.error("--cpu-share must be in (0, 1], --node-memory-gb above 0")
    return args


# --------------------------------------------------------------------------- readings
@dataclass
class Usage:
    """What redis-server did between two readings."""

    calls: Counter[str] = field(default_factory=Counter)  # commands executed, by name
    net_in: float = 0.0  # bytes received
    net_out: float = 0.0  # bytes sent
    cpu_s: float = 0.0  # redis-server's CPU (user + system), /proc/<pid>/stat (10 ms ticks)
    info_cpu_s: float = 0.0  # the same from INFO cpu (getrusage: microseconds)
    evalsha_us: float = 0.0  # time inside EVALSHA (INFO commandstats usec)
    memory: int = 0  # used_memory delta
    seconds: float = 0.0

    def minus(self, other: Usage, times: float = 1.0) -> Usage:
        calls = Counter({k: v - other.calls.get(k, 0) * times for k, v in self.calls.items()})
        return Usage(+calls, self.net_in - other.net_in * times,
                     self.net_out - other.net_out * times, self.cpu_s - other.cpu_s * times,
                     self.info_cpu_s - other.info_cpu_s * times,
                     self.evalsha_us - other.evalsha_us * times, self.memory, self.seconds)

    def scaled(self, f: float) -> Usage:
        return Usage(Counter({k: v * f for k, v in self.calls.items()}), self.net_in * f,
                     self.net_out * f, self.cpu_s * f, self.info_cpu_s * f, self.evalsha_us * f,
                     int(self.memory * f), self.seconds * f)

    def per(self, n: float) -> dict[str, Any]:
        return {"commands": sum(self.calls.values()) / n,
                "by_command": {k: v / n for k, v in sorted(self.calls.items())},
                "bytes_in": self.net_in / n, "bytes_out": self.net_out / n,
                "redis_cpu_us": self.info_cpu_s / n * 1e6,
                "redis_cpu_us_proc": self.cpu_s / n * 1e6,
                "evalsha_us": self.evalsha_us / n}


@dataclass(frozen=True)
class Reading:
    calls: dict[str, int]
    net_in: int
    net_out: int
    cpu_s: float
    info_cpu_s: float
    evalsha_us: int
    memory: int
    at: float


class Meter:
    """Readings of one redis-server: commands executed (``INFO commandstats``, counting the
    commands Lua scripts run), bytes in and out (``INFO stats``), CPU time from /proc (clock
    ticks) and from ``INFO cpu`` (microseconds: the figure used), ``used_memory``; ``since``
    takes the cost of a reading itself out."""

    def __init__(self, r: redis.Redis, pid: int) -> None:
        self.r = r
        self.pid = pid
        self.cost = Usage()
        costs = [self.since(self.read()) for _ in range(3)]
        self.cost = min(costs, key=lambda u: u.net_out)  # a reading's own commands and bytes
        self.cost.cpu_s = self.cost.info_cpu_s = 0.0

    def read(self) -> Reading:
        info = self.r.info("commandstats", "stats", "memory", "cpu")
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()
                 if k.startswith("cmdstat_")}
        return Reading(calls, int(info["total_net_input_bytes"]),
                       int(info["total_net_output_bytes"]), tree_cpu_s(self.pid),
                       float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
                       int(info.get("cmdstat_evalsha", {}).get("usec", 0)),
                       int(info["used_memory"]), time.monotonic())

    def since(self, before: Reading) -> Usage:
        after = self.read()
        calls = Counter({k: v - before.calls.get(k, 0) for k, v in after.calls.items()})
        usage = Usage(+calls, after.net_in - before.net_in, after.net_out - before.net_out,
                      after.cpu_s - before.cpu_s, after.info_cpu_s - before.info_cpu_s,
                      after.evalsha_us - before.evalsha_us, after.memory - before.memory,
                      after.at - before.at)
        return usage.minus(self.cost)


class Wire:
    """Commands this process writes to Redis, by name, from the RESP bytes redis-py sends: a
    pipeline's or a transaction's commands count one by one, the commands a script runs not
    at all. Counting only between ``start()`` and ``stop()``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.bytes = 0
        self._on = False
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Wire]:
        cls = redis.connection.AbstractConnection
        original = cls.send_packed_command
        wire = self

        def send_packed_command(conn: Any, command: Any, check_health: bool = True) -> Any:
            if wire._on:
                wire.count(command)
            return original(conn, command, check_health)

        cls.send_packed_command = send_packed_command  # type: ignore[method-assign]
        try:
            yield self
        finally:
            cls.send_packed_command = original  # type: ignore[method-assign]

    def count(self, command: Any) -> None:
        chunks = [command] if isinstance(command, (str, bytes, memoryview)) else command
        data = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
        names = Counter(resp_command_names(data))
        with self._lock:
            self.calls.update(names)
            self.bytes += len(data)

    def start(self) -> None:
        self.calls, self.bytes, self._on = Counter(), 0, True

    def stop(self) -> Counter[str]:
        self._on = False
        return self.calls


def resp_command_names(data: bytes) -> Iterator[str]:
    """The command name of each RESP array in ``data`` (lower case)."""
    pos = 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        argc = int(data[pos + 1:end])
        pos = end + 2
        name = b""
        for i in range(argc):
            end = data.index(b"\r\n", pos)
            size = int(data[pos + 1:end])
            pos = end + 2
            if i == 0:
                name = data[pos:pos + size]
            pos += size + 2
        yield name.decode(errors="replace").lower()


# --------------------------------------------------------------------------- helpers
def score_columns(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like scores (bimodal) and labels that mostly agree with them."""
    positive = rng.random(n) < 0.3
    scores = np.where(positive, rng.beta(5, 2, n), rng.beta(2, 5, n))
    actual = np.where(rng.random(n) < 0.9, positive, ~positive).astype(np.int8)
    return np.clip(scores, 0.0, 1.0), actual


def take_queue(raw: redis.Redis) -> list[Any]:
    """The task bodies on the events queue in the order they were sent, removed from it."""
    from mlops_tasks.ingest import codec

    items = raw.lrange(QUEUE, 0, -1)
    raw.delete(QUEUE)
    bodies = []
    for item in reversed(items):  # LPUSHed: the newest first
        body = base64.b64decode(json.loads(item)["body"])
        bodies.append(codec.bounded_loads(body)[0][0])
    return bodies


class Clock:
    """The Ingestor's clock in part b: the time of the batch being applied."""

    def __init__(self) -> None:
        self.at = time.time()

    def __call__(self) -> float:
        return self.at


class Store:
    """This process's view of the store: settings, the registry (the built-in models
    registered), an Ingestor whose clock can be set."""

    def __init__(self, url: str) -> None:
        from mlops_tasks.ingest.pipeline import Ingestor
        from mlops_tasks.registry import Registry, builtin_models
        from mlops_tasks.settings import Settings

        self.url = url
        self.clock = Clock()
        self.settings = Settings.from_env()
        self.registry = Registry(redis.Redis.from_url(self.url, decode_responses=True),
                                 self.settings)
        for e in builtin_models(self.settings):
            self.registry.register(e.name, e.version, e.config, actor="bench", builtin=True,
                                   exist_ok=True)
        self.ingestor = Ingestor(self.settings, self.registry, redis.Redis.from_url(self.url),
                                 clock=self.clock)

    def register_copy(self, name: str) -> None:
        from mlops_tasks.registry import builtin_models

        t = next(e for e in builtin_models(self.settings) if e.name == MODEL)
        self.registry.register(name, t.version, t.config, actor="bench", exist_ok=True)


def client(url: str) -> Any:
    from mlops_tasks.client import MonitoringClient

    return MonitoringClient(url, redis_url=url, overflow="block")


# --------------------------------------------------------------------------- part a
def part_a_offline(srv: Any, meter: Meter, wire: Wire, store: Store, size: int, batches: int,
                   timeout: float) -> dict[str, Any]:
    """a1-a3 for ``batches`` batches of ``size``: the client's and the store's side, no
    worker."""
    raw = srv.client(decode=False)
    rng = np.random.default_rng(size)
    cols = [score_columns(rng, size) for _ in range(8)]
    with client(srv.url) as c:
        c.record_batch(MODEL, cols[0][0], actual=cols[0][1])  # warm-up: connections, caches
        c.flush(30)
        warm = take_queue(raw)
        before = meter.read()
        wire.start()
        for i in range(batches):
            s, a = cols[i % len(cols)]
            c.record_batch(MODEL, s, actual=a)
        c.flush(timeout)
        sent = wire.stop()
        client_usage = meter.since(before)
        message_bytes = sum(len(x) for x in raw.lrange(QUEUE, 0, -1))
    bodies = take_queue(raw)
    if len(bodies) != batches:
        raise RuntimeError(f"expected {batches} messages on the queue, found {len(bodies)}")
    for body in warm:
        store.ingestor.ingest_predictions(body)
    _, labeled0 = totals(srv.client(), MODEL)
    before = meter.read()
    wire.start()
    cpu0 = time.process_time()
    for body in bodies:
        store.ingestor.ingest_predictions(body)
    ingest_cpu = time.process_time() - cpu0
    applied = wire.stop()
    store_usage = meter.since(before)
    n = batches * size
    counted = totals(srv.client(), MODEL)[1] - labeled0
    if counted != n:
        raise RuntimeError(f"the Ingestor counted {counted:,} labeled events of {n:,}")
    return {
        "batch_size": size, "batches": batches, "events": n,
        "client": {"per_batch": client_usage.per(batches), "per_event": client_usage.per(n),
                   "sent_per_batch": {k: v / batches for k, v in sorted(sent.items())},
                   "queue_bytes_per_event": message_bytes / n,
                   "backlog_memory_per_event": client_usage.memory / n},
        "store": {"per_batch": store_usage.per(batches), "per_event": store_usage.per(n),
                  "sent_per_batch": {k: v / batches for k, v in sorted(applied.items())},
                  "ingest_cpu_us_per_event": ingest_cpu / n * 1e6,
                  "events_per_s": n / store_usage.seconds},
    }


class Probe:
    """The end-to-end step's waiting loop: counted, so its commands and bytes come out."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.calls = 0

    def __call__(self) -> tuple[int, int, int]:
        self.calls += 1
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(f"mlops:{{{MODEL}}}:total:1.0.0", "labeled")
        pipe.llen(QUEUE)
        pipe.hlen(UNACKED)
        labeled, queued, unacked = pipe.execute()
        return int(labeled or 0), int(queued), int(unacked)


def probe_cost(meter: Meter, r: redis.Redis, n: int = 20) -> Usage:
    probe = Probe(r)
    before = meter.read()
    for _ in range(n):
        probe()
    usage = meter.since(before)
    usage.cpu_s = usage.info_cpu_s = 0.0
    return usage.scaled(1.0 / n)


def part_a_end_to_end(srv: Any, meter: Meter, worker: WorkerProc, plan: dict[int, int],
                      per_probe: Usage, timeout: float) -> tuple[dict[int, Any], dict[str, Any]]:
    """a4: the same traffic (``plan``: batches by batch size) through a worker, less the
    worker's idle traffic and the probes; the figures by batch size, and the idle traffic."""
    r = srv.client()
    sizes = list(plan)
    rngs = {size: np.random.default_rng(size) for size in sizes}
    cols = {size: [score_columns(rngs[size], size) for _ in range(8)] for size in sizes}
    with client(srv.url) as c:
        base = totals(r, MODEL)[1]
        for size in sizes:  # warm-up: the worker is ready once these are counted
            c.record_batch(MODEL, cols[size][0][0], actual=cols[size][0][1])
        c.flush(30)
        wait_until("warm-up counted", lambda: totals(r, MODEL)[1],
                   lambda v: v >= base + sum(sizes), timeout=60, alive=[worker])
        time.sleep(1.0)
        idle_before, worker_idle0 = meter.read(), tree_cpu_s(worker.pid)
        time.sleep(IDLE_S)
        idle = meter.since(idle_before).scaled(1.0 / IDLE_S)  # per second
        worker_idle = (tree_cpu_s(worker.pid) - worker_idle0) / IDLE_S
        out: dict[int, Any] = {}
        for size in sizes:
            probe = Probe(r)
            batches = plan[size]
            n = batches * size
            target = probe()[0] + n
            probe.calls = 0  # only the probes between the readings come out
            before, worker0 = meter.read(), tree_cpu_s(worker.pid)
            for i in range(batches):
                s, a = cols[size][i % len(cols[size])]
                c.record_batch(MODEL, s, actual=a)
            c.flush(timeout)
            wait_until(f"{n:,} events counted and acknowledged", probe,
                       lambda v, want=target: v[0] >= want and v[1:] == (0, 0),
                       timeout=timeout, interval=PROBE_INTERVAL_S, alive=[worker])
            usage = meter.since(before)
            worker_cpu = tree_cpu_s(worker.pid) - worker0 - worker_idle * usage.seconds
            usage = usage.minus(per_probe, probe.calls).minus(idle, usage.seconds)
            out[size] = {"batch_size": size, "batches": batches, "events": n,
                         "seconds": usage.seconds, "events_per_s": n / usage.seconds,
                         "per_batch": usage.per(batches), "per_event": usage.per(n),
                         "worker_cpu_us_per_event": worker_cpu / n * 1e6,
                         "probes": probe.calls}
            log(f"    B={size:,}: {n / usage.seconds:,.0f} events/s end to end")
    return out, {"commands": sum(idle.calls.values()), "by_command": dict(idle.calls),
                 "bytes_in": idle.net_in, "bytes_out": idle.net_out,
                 "redis_cpu_s": idle.info_cpu_s, "worker_cpu_s": worker_idle}


# --------------------------------------------------------------------------- part b
def key_group(key: str) -> str:
    """agg:m, hist:h, ..., ring, total, counters, seen, vidx, or registry (the rest)."""
    tail = key.split("}:", 1)[1]
    parts = tail.split(":")
    if parts[0] in ("agg", "hist"):
        return f"{parts[0]}:{parts[2]}"
    named = {"recent": "ring", "total": "total", "counters": "counters", "seen": "seen",
             "vidx": "vidx", "pending": "pending", "journal": "journal", "done": "done"}
    return named.get(parts[0], "registry")


def model_keys(r: redis.Redis, name: str) -> dict[str, list[int]]:
    """MEMORY USAGE of each key of a model, grouped (``key_group``)."""
    groups: dict[str, list[int]] = {}
    names = list(r.scan_iter(match=f"mlops:{{{name}}}:*", count=5000))
    pipe = r.pipeline(transaction=False)
    for k in names:
        pipe.memory_usage(k, samples=0)
    for k, size in zip(names, pipe.execute(), strict=True):
        groups.setdefault(key_group(k), []).append(int(size or 0))
    return groups


def hist_strlen(r: redis.Redis, name: str) -> dict[str, float]:
    """Mean STRLEN of a model's score histograms by granularity: what BITFIELD wrote, against
    the MEMORY USAGE the string was given."""
    out = {}
    for code in "mhd":
        found = list(r.scan_iter(match=f"mlops:{{{name}}}:hist:*:{code}:*", count=5000))
        if found:
            pipe = r.pipeline(transaction=False)
            for k in found:
                pipe.strlen(k)
            out[code] = sum(pipe.execute()) / len(found)
    return out


def minute_counts(rate: float) -> list[int]:
    """Events in each of the 1,440 minutes of a day at ``rate`` events/s, spread evenly."""
    per_min = rate * 60
    return [math.floor((i + 1) * per_min) - math.floor(i * per_min) for i in range(1440)]


def part_b_model_day(srv: Any, store: Store, rate: float, timeout: float) -> dict[str, Any]:
    r = srv.client()
    raw = srv.client(decode=False)
    name = f"sizing-{rate:g}-per-s".replace(".", "-")
    store.register_copy(name)
    registered = model_keys(r, name)
    registry_bytes = sum(sum(v) for v in registered.values())
    registry_keys = sum(len(v) for v in registered.values())
    day0 = (math.floor(time.time() / DAY_S) + 1) * DAY_S  # the next UTC day: nothing expires
    rng = np.random.default_rng(round(rate * 1000))
    counts = minute_counts(rate)
    stamps = [day0 + i * 60 + 30.0 for i, n in enumerate(counts) if n]  # mid-minute
    before = int(r.info("memory")["used_memory"])
    with client(srv.url) as c:
        for ts, n in zip(stamps, (n for n in counts if n), strict=True):
            s, a = score_columns(rng, n)
            c.record_batch(name, s, actual=a, timestamp=ts)
        c.flush(timeout)
    bodies = take_queue(raw)
    t0 = time.monotonic()
    for ts, body in zip(stamps, bodies, strict=True):
        store.clock.at = ts + 1.0
        store.ingestor.ingest_predictions(body)
    store.clock.at = time.time()
    seconds = time.monotonic() - t0
    after = int(r.info("memory")["used_memory"])
    groups = model_keys(r, name)
    events = sum(counts)
    if totals(r, name)[1] != events:
        raise RuntimeError(f"{name}: {totals(r, name)[1]:,} labeled counted of {events:,}")
    grown = after - before
    new_keys = sum(len(v) for v in groups.values()) - registry_keys
    measured = sum(sum(v) for v in groups.values()) - registry_bytes
    per_key = (grown - measured) / max(1, new_keys)  # allocator and keyspace overhead
    sizes = {g: {"keys": len(v), "bytes": sum(v) + per_key * len(v),
                 "bytes_per_key": sum(v) / len(v) + per_key}
             for g, v in sorted(groups.items()) if g != "registry"}
    return {"model": name, "rate": rate, "events": events, "messages": len(bodies),
            "ingest_s": seconds, "used_memory_growth": grown, "per_key_overhead": per_key,
            "registry_bytes": registry_bytes, "registry_keys": registry_keys,
            "groups": sizes, "hist_strlen": hist_strlen(r, name),
            "steady": steady_state(sizes, store.settings.retention_days)}


def steady_state(sizes: dict[str, Any], retention_days: int) -> dict[str, Any]:
    """Live buckets of each granularity once the oldest expire (timebuckets.py: a bucket lives
    its own length plus ``keep_s``), each the size measured over the day."""
    from mlops_tasks.timebuckets import granularities

    out: dict[str, Any] = {}
    total = 0.0
    for g in granularities(retention_days):
        live = (g.size_s + g.keep_s) / g.size_s
        day_buckets = DAY_S // g.size_s
        per_bucket = sum(sizes.get(f"{kind}:{g.code}", {}).get("bytes", 0.0)
                         for kind in ("agg", "hist")) / day_buckets
        out[g.code] = {"live_buckets": live, "bytes_per_bucket": per_bucket,
                       "bytes": live * per_bucket}
        total += live * per_bucket
    fixed = sum(v["bytes"] for k, v in sizes.items() if not k.startswith(("agg:", "hist:")))
    out["fixed"] = fixed
    out["total"] = total + fixed
    out["retention_days"] = retention_days
    return out


def part_b_pending(srv: Any, store: Store, n: int, timeout: float) -> dict[str, Any]:
    """Bytes of used_memory per prediction awaiting its label (``--pending`` of them)."""
    r = srv.client()
    raw = srv.client(decode=False)
    rng = np.random.default_rng(5)
    size = 10_000
    store.clock.at = time.time()
    with client(srv.url) as c:
        c.record_batch(MODEL, rng.random(size))  # warm-up: the table exists
        c.flush(30)
        for body in take_queue(raw):
            store.ingestor.ingest_predictions(body)
        before = int(r.info("memory")["used_memory"])
        for _ in range(max(1, n // size)):
            c.record_batch(MODEL, rng.random(size))
        c.flush(timeout)
    for body in take_queue(raw):
        store.ingestor.ingest_predictions(body)
    grown = int(r.info("memory")["used_memory"]) - before
    added = max(1, n // size) * size
    return {"predictions": added, "used_memory_growth": grown, "bytes_per_pending": grown / added}


# --------------------------------------------------------------------------- part c
def scaling_model(res: dict[str, Any], cpu_share: float, node_gb: float) -> dict[str, Any]:
    """Capacities from the measured costs:

    * events/s one redis-server core takes = 1e6 / (its CPU us per event), planned at
      ``cpu_share`` of the core: Redis runs commands on one thread, so a node's ingest is
      bounded by one core whatever the machine has;
    * events/s per worker process = 1e6 / (worker CPU us per event): a pool process is one core;
    * network = bytes in and out per event x events/s;
    * models per GiB = 2**30 / steady-state bytes per model (one version, at each rate);
    * a model at ``rate`` events/s sent by one client process comes in messages of
      rate x flush interval events (at least 1, at most the client's batch size): its Redis and
      worker CPU are its messages/s x the cost of a message of that size, interpolated between
      the batch sizes measured; models per node = the smaller of the CPU and the memory bound;
    * a cluster is needed once the traffic passes one node's planned events/s, or the models'
      memory (with pending predictions) passes the node's memory; the shards needed are the
      larger of the two ratios. A model's keys share one hash tag (one slot), so one model's
      traffic never spreads over nodes: its ceiling is one node's."""
    out: dict[str, Any] = {"cpu_share": cpu_share, "node_memory_gb": node_gb, "by_batch": {},
                           "by_rate": {}}
    for size, x in res.get("per_batch_size", {}).items():
        e2e = x.get("end_to_end")
        redis_us = e2e["per_event"]["redis_cpu_us"] if e2e else \
            x["client"]["per_event"]["redis_cpu_us"] + x["store"]["per_event"]["redis_cpu_us"]
        # with the broker elsewhere Redis still takes the journal entry (a1, whose LPUSH of
        # the message goes to the broker instead) and the store's script (a3)
        store_us = x["store"]["per_event"]["redis_cpu_us"] + \
            x["client"]["per_event"]["redis_cpu_us"]
        core = 1e6 / redis_us
        row = {"redis_cpu_us_per_event": redis_us, "redis_cpu_us_per_message": redis_us * size,
               "broker_elsewhere_redis_cpu_us_per_event": store_us,
               "events_per_s_per_redis_core": core,
               "planned_events_per_s_per_node": core * cpu_share,
               "planned_events_per_s_broker_elsewhere": 1e6 / store_us * cpu_share}
        if e2e:
            row["events_per_s_per_worker_process"] = 1e6 / e2e["worker_cpu_us_per_event"]
            row["worker_cpu_us_per_message"] = e2e["worker_cpu_us_per_event"] * size
            per_event = e2e["per_event"]
            row["network_mb_s_at_planned"] = ((per_event["bytes_in"] + per_event["bytes_out"])
                                              * core * cpu_share / 1e6)
        out["by_batch"][size] = row
    node_bytes = node_gb * GIB
    redis_per_msg, worker_per_msg = message_costs(res)
    flush_s, batch_size = res["client_defaults"]["flush_ms"] / 1000, \
        res["client_defaults"]["batch_size"]
    for rate, x in res.get("model_day", {}).items():
        steady = x["steady"]["total"] + x["registry_bytes"]
        per_msg = min(max(rate * flush_s, 1.0), batch_size)
        msgs = rate / per_msg
        row = {"steady_bytes_per_model": steady, "models_per_gib": GIB / steady,
               "models_per_node_by_memory": node_bytes / steady,
               "day_growth_bytes": x["used_memory_growth"],
               "events_per_message": per_msg, "messages_per_s": msgs}
        if redis_per_msg:
            cpu_us_s = msgs * redis_per_msg(per_msg)
            row["redis_cpu_us_per_s_per_model"] = cpu_us_s
            row["models_per_node_by_cpu"] = cpu_share * 1e6 / cpu_us_s
            row["models_per_node"] = min(row["models_per_node_by_cpu"],
                                         row["models_per_node_by_memory"])
        if worker_per_msg:
            row["models_per_worker_process"] = 1e6 / (msgs * worker_per_msg(per_msg))
        out["by_rate"][rate] = row
    return out


def message_costs(res: dict[str, Any]) -> tuple[Callable[[float], float] | None,
                                                 Callable[[float], float] | None]:
    """Redis and worker CPU (us) of one message of n events, interpolated between the batch
    sizes measured (end to end where measured, else client + store for Redis)."""
    xs = res.get("per_batch_size", {})
    sizes = sorted(xs)
    if not sizes:
        return None, None
    redis_us = [x["end_to_end"]["per_batch"]["redis_cpu_us"] if "end_to_end" in x else
                x["client"]["per_batch"]["redis_cpu_us"] + x["store"]["per_batch"]["redis_cpu_us"]
                for x in (xs[s] for s in sizes)]

    def redis_cost(n: float) -> float:
        return float(np.interp(n, sizes, redis_us))

    if not all("end_to_end" in xs[s] for s in sizes):
        return redis_cost, None
    worker_us = [xs[s]["end_to_end"]["worker_cpu_us_per_event"] * s for s in sizes]

    def worker_cost(n: float) -> float:
        return float(np.interp(n, sizes, worker_us))

    return redis_cost, worker_cost


# --------------------------------------------------------------------------- main
def main() -> int:
    args = parse_args()
    results: dict[str, Any] = {"benchmark": "sizing", "machine": machine_facts(),
                               "concurrency": args.concurrency, "per_batch_size": {},
                               "model_day": {}, "client_defaults": {}}
    log(f"machine: {results['machine']}")
    wire = Wire()
    with Bench("sizing", keep_tmp=args.keep_tmp) as bench, wire.installed():
        srv = bench.start_redis()
        bench.use_redis(srv)
        meter = Meter(srv.client(), srv.pid)
        store = Store(srv.url)
        results["client_defaults"] = {"flush_ms": store.settings.client_flush_ms,
                                      "batch_size": store.settings.client_batch_size}
        per_probe = probe_cost(meter, srv.client())
        plan = {size: max(1, min(args.events // size, args.max_batches))
                for size in args.batch_sizes}
        for size, batches in plan.items():
            with phase(f"(a1-a3) {batches:,} batches of {size:,} labeled events"):
                results["per_batch_size"][size] = part_a_offline(
                    srv, meter, wire, store, size, batches, args.timeout)
        if not args.skip_worker:
            with phase(f"(a4) end to end through mlops worker -c {args.concurrency}"):
                worker = bench.start_mlops_worker(srv, args.concurrency)
                wait_models_registered(srv.client(), worker)
                e2e, results["worker_idle_per_s"] = part_a_end_to_end(
                    srv, meter, worker, plan, per_probe, args.timeout)
                bench.stop(worker)
            for size, x in e2e.items():
                results["per_batch_size"][size]["end_to_end"] = x
        for rate in args.rates:
            with phase(f"(b) one model-day at {rate:g} labeled events/s"):
                results["model_day"][rate] = part_b_model_day(srv, store, rate, args.timeout)
        if args.pending:
            with phase(f"(b) {args.pending:,} predictions awaiting their label"):
                results["pending"] = part_b_pending(srv, store, args.pending, args.timeout)
    results["scaling"] = scaling_model(results, args.cpu_share, args.node_memory_gb)
    report(results)
    return 0


# --------------------------------------------------------------------------- report
def report(res: dict[str, Any]) -> None:
    sizes = list(res["per_batch_size"])
    report_commands(res, sizes)
    report_memory(res)
    report_scaling(res, sizes)
    print_json(res)


def _cell(get: Callable[[], Any]) -> Any:
    try:
        return get()
    except (KeyError, TypeError):
        return None


def report_commands(res: dict[str, Any], sizes: list[int]) -> None:
    steps = [("client", lambda x: x["client"]), ("store", lambda x: x["store"]),
             ("end to end", lambda x: x["end_to_end"])]
    heads = [f"{step} B={s:,}" for s in sizes for step, _ in steps]
    xs = res["per_batch_size"]

    def row(label: str, pick: Callable[[dict[str, Any]], Any]) -> list[Any]:
        return [label, *(_cell(lambda s=s, get=get: pick(get(xs[s])))
                         for s in sizes for _, get in steps)]

    names = sorted({k for s in sizes for _, get in steps
                    for k in (_cell(lambda s=s, get=get: get(xs[s])["per_batch"]["by_command"])
                              or {})})
    print("\n(a) redis-server per batch (INFO commandstats: scripts' commands included) and per "
          "event; client = record_batch with no worker, store = Ingestor in this process, end "
          "to end = through mlops worker (Redis broker)")
    rows = [row("commands executed / batch", lambda x: x["per_batch"]["commands"]),
            row("  sent over the network / batch",
                lambda x: sum(x["sent_per_batch"].values())),
            *(row(f"  {n}", lambda x, n=n: x["per_batch"]["by_command"].get(n)) for n in names),
            row("commands executed / event", lambda x: x["per_event"]["commands"]),
            row("bytes in / event", lambda x: x["per_event"]["bytes_in"]),
            row("bytes out / event", lambda x: x["per_event"]["bytes_out"]),
            row("bytes in / batch", lambda x: x["per_batch"]["bytes_in"]),
            row("bytes out / batch", lambda x: x["per_batch"]["bytes_out"]),
            row("redis-server CPU us / event (INFO cpu)",
                lambda x: x["per_event"]["redis_cpu_us"]),
            row("  the same from /proc/<pid>/stat", lambda x: x["per_event"]["redis_cpu_us_proc"]),
            row("  of which in EVALSHA (commandstats usec)",
                lambda x: x["per_event"]["evalsha_us"]),
            row("worker CPU us / event", lambda x: x.get("worker_cpu_us_per_event",
                                                         x.get("ingest_cpu_us_per_event"))),
            row("events/s", lambda x: x["events_per_s"]),
            row("queued message bytes / event", lambda x: x["queue_bytes_per_event"]),
            row("Redis memory / queued event", lambda x: x["backlog_memory_per_event"])]
    print_table(["per", *heads], rows)
    print("(store's worker CPU: the Ingestor alone, bodies decoded beforehand; end to end: the "
          "worker's main process and pool children)")
    if "worker_idle_per_s" in res:
        x = res["worker_idle_per_s"]
        print(f"taken out of end to end: the idle worker's {x['commands']:.1f} commands/s "
              f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(x['by_command'].items()))}), "
              f"{x['bytes_in']:,.0f} B/s in, {x['bytes_out']:,.0f} B/s out")


def report_memory(res: dict[str, Any]) -> None:
    days = res["model_day"]
    if not days:
        return
    rates = list(days)
    groups = sorted({g for x in days.values() for g in x["groups"]})
    print("\n(b) Redis memory of one model-version (used_memory growth over one day of labeled "
          "traffic; by family from MEMORY USAGE plus the measured per-key overhead)")
    rows: list[list[Any]] = [
        ["events in the day", *(days[r]["events"] for r in rates)],
        ["used_memory growth over the day", *(days[r]["used_memory_growth"] for r in rates)]]
    rows.extend([f"  {g} (keys / bytes)", *(
        f"{days[r]['groups'][g]['keys']:,} / {days[r]['groups'][g]['bytes']:,.0f}"
        if g in days[r]["groups"] else "-" for r in rates)] for g in groups)
    rows.append(["  hist STRLEN m / h / d (bytes written)", *(" / ".join(
        f"{days[r]['hist_strlen'].get(c, 0):,.0f}" for c in "mhd") for r in rates)])
    rows.append(["registry records (bytes)", *(days[r]["registry_bytes"] for r in rates)])
    for code, label in (("m", "minute"), ("h", "hour"), ("d", "day")):
        rows.append([f"steady: {label} buckets live x bytes each",
                     *(f"{days[r]['steady'][code]['live_buckets']:.0f} x "
                       f"{days[r]['steady'][code]['bytes_per_bucket']:,.0f}" for r in rates)])
    rows.append(["steady: fixed keys (totals, ring, counters, ...)",
                 *(days[r]["steady"]["fixed"] for r in rates)])
    rows.append(["steady state per model-version, registry included",
                 *(days[r]["steady"]["total"] + days[r]["registry_bytes"] for r in rates)])
    print_table(["bytes", *(f"{r:g} events/s" for r in rates)], rows)
    retention = days[rates[0]]["steady"]["retention_days"]
    print(f"retention {retention} days: minute buckets kept 3 h, hour buckets 8 days, day "
          f"buckets {retention} days (timebuckets.py)")
    if "pending" in res:
        x = res["pending"]
        print(f"predictions awaiting their label: {x['bytes_per_pending']:.1f} B each "
              f"({x['predictions']:,} added, used_memory +{x['used_memory_growth']:,})")


def report_scaling(res: dict[str, Any], sizes: list[int]) -> None:
    sc = res["scaling"]
    print(f"\n(c) scaling model (a Redis node planned at {sc['cpu_share']:.0%} of its one "
          f"command thread; node memory {sc['node_memory_gb']:g} GB)")
    b = sc["by_batch"]
    print_table(["figure", *(f"B={s:,}" for s in sizes)], [
        ["redis-server CPU us / event (Redis broker + store)",
         *(b[s]["redis_cpu_us_per_event"] for s in sizes)],
        ["  broker elsewhere (RabbitMQ): journal + store",
         *(b[s]["broker_elsewhere_redis_cpu_us_per_event"] for s in sizes)],
        ["redis-server CPU us / message", *(b[s]["redis_cpu_us_per_message"] for s in sizes)],
        ["worker CPU us / message", *(b[s].get("worker_cpu_us_per_message") for s in sizes)],
        ["events/s one Redis core takes (100 %)",
         *(b[s]["events_per_s_per_redis_core"] for s in sizes)],
        ["events/s per Redis node, planned", *(b[s]["planned_events_per_s_per_node"]
                                              for s in sizes)],
        ["  broker elsewhere, planned",
         *(b[s]["planned_events_per_s_broker_elsewhere"] for s in sizes)],
        ["events/s per worker process (one core)",
         *(b[s].get("events_per_s_per_worker_process") for s in sizes)],
        ["network MB/s at the planned rate", *(b[s].get("network_mb_s_at_planned")
                                               for s in sizes)],
    ])
    rates = sc["by_rate"]
    if rates:
        v = list(rates.values())
        print_table(["a model at", *(f"{r:g} events/s" for r in rates)], [
            ["steady state per model-version (MB)", *(x["steady_bytes_per_model"] / 1e6
                                                      for x in v)],
            ["models per GiB", *(x["models_per_gib"] for x in v)],
            ["events per message (one client process)", *(x["events_per_message"] for x in v)],
            ["Redis CPU per model (ms per s)", *(_cell(
                lambda x=x: x["redis_cpu_us_per_s_per_model"] / 1e3) for x in v)],
            [f"models per node: by memory ({sc['node_memory_gb']:g} GB)",
             *(x["models_per_node_by_memory"] for x in v)],
            ["models per node: by CPU (planned share)",
             *(x.get("models_per_node_by_cpu") for x in v)],
            ["models per node", *(x.get("models_per_node") for x in v)],
            ["models per worker process", *(x.get("models_per_worker_process") for x in v)],
        ])
    pending = res.get("pending", {}).get("bytes_per_pending")
    limits = ", ".join(f"{b[s]['planned_events_per_s_per_node']:,.0f} in {s:,}-event messages"
                       for s in sizes)
    print(f"One Redis suffices while, all models together, messages/s x Redis CPU per message "
          f"<= {sc['cpu_share']:.0%} of a core ({limits}) and models x steady state + "
          "predictions awaiting their label x"
          + (f" {pending:.0f} B" if pending else " their size")
          + f" <= {sc['node_memory_gb']:g} GB; beyond either, a cluster of max(CPU / planned, "
          "memory / node memory) primaries. A model's keys share one slot: one model never "
          "spreads over nodes.")

if __name__ == "__main__":
    run_main(main)
