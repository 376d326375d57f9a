"""End-to-end ingest throughput: from the client's record calls until the events are counted in
the aggregates, side by side with the naive one-task-per-event design and Redis's own ceiling.

    .venv/bin/python bench/ingest_throughput.py [--concurrency 2] [--batch-events 2000000]
        [--prediction-events 500000] [--naive-events 20000] [--redis-benchmark-n 2000000]
        [--brokers redis,amqp]

Phases, all against one private redis-server (``--save "" --appendonly no``):

  a. ``MonitoringClient.record_batch`` with labeled events (``actual=`` arrays), calls of
     ``--batch-size`` scores, consumed by ``mlops worker --concurrency N``; once per broker of
     ``--brokers``, one after the other with a worker of its own, side by side in the report:
     ``redis`` (the store's redis-server: the client journals and queues a batch in one
     MULTI/EXEC), ``amqp`` (a private virtual host of the machine's RabbitMQ on 127.0.0.1:5672,
     created and deleted here; quorum queues, the client journals in Redis then ``send_task``
     with publisher confirms) or an ``amqp://`` URL used as given. The store is always the
     private redis-server;
  b. ``MonitoringClient.record_prediction(..., actual=...)`` from one thread;
  c. the naive design: one Celery task per event (bench/_naive_app.py, one HINCRBY pipeline per
     event), its own ``celery worker --concurrency N`` with the project's worker configuration,
     task events included like ``mlops worker`` (``--naive-without-task-events`` turns them off);
     the mlops worker is stopped first so the two designs never share the CPUs;
  d. ``redis-benchmark -P 64 -t set,incr`` (pipelined): what Redis alone does on this machine.

(b)-(d) always use the Redis broker.

Each of (a)-(c) is timed from just before the first record/send call until the last event is
visible in Redis (the Ingestor's ``mlops:{model}:total:<version>`` HASH, field ``labeled``, or
the naive task's own counter), polled every 10 ms. The clients use ``overflow="block"`` so that
no event is dropped: a client that produces faster than the pipeline drains is slowed down, and
that is part of the measured time.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from _harness import (
    Bench,
    WorkerProc,
    log,
    machine_facts,
    performance_summary,
    phase,
    print_json,
    print_table,
    queue_length,
    rabbitmq_pid,
    redis_cpu_s,
    run_main,
    totals,
    tree_cpu_s,
    wait_models_registered,
    wait_until,
)

# issue 15: record_batch >= 400,000 events/s on 2 cores and >= 500x the naive design in the same
# run; one thread through record_prediction >= 200,000 events/s; the worker <= 2 us of CPU per
# ingested event (its main process and pool children together, Redis not included)
TARGETS = {"record_batch": 400_000, "record_prediction": 200_000}
TARGET_RATIO = 500
TARGET_WORKER_US = 2.0
NAIVE_EXPECTED = (800, 1_000)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=2,
                   help="worker processes of each worker (default 2)")
    p.add_argument("--batch-events", type=int, default=2_000_000,
                   help="events sent with record_batch (default 2,000,000)")
    p.add_argument("--batch-size", type=int, default=10_000,
                   help="scores per record_batch call (default 10,000)")
    p.add_argument("--prediction-events", type=int, default=500_000,
                   help="record_prediction calls (default 500,000)")
    p.add_argument("--naive-events", type=int, default=20_000,
                   help="one-task-per-event tasks (default 20,000)")
    p.add_argument("--naive-without-task-events", action="store_true",
                   help="run the naive worker without Celery task events (the project's worker "
                        "sends them; default: with, like the project)")
    p.add_argument("--redis-benchmark-n", type=int, default=2_000_000,
                   help="requests per redis-benchmark test (default 2,000,000; 0 skips it)")
    p.add_argument("--client-batch-size", type=int, default=None,
                   help="MonitoringClient batch_size for (b) (default: the library's, "
                        "MLOPS_CLIENT_BATCH_SIZE=500)")
    p.add_argument("--timeout", type=float, default=240.0,
                   help="give up on a phase after this many seconds (default 240)")
    p.add_argument("--skip", default="", help="comma-separated phases to skip: a,b,c,d")
    p.add_argument("--brokers", "--broker", default="redis",
                   help="comma-separated brokers for (a), run one after the other and reported "
                        "side by side: redis, amqp (a private vhost of the RabbitMQ on "
                        "127.0.0.1:5672, made and deleted here; skipped with the reason when "
                        "there is none) or an amqp:// URL used as given (default: redis)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs)")
    args = p.parse_args()
    for name in ("concurrency", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("batch_events", "prediction_events", "naive_events", "redis_benchmark_n"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    args.brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    for b in args.brokers:
        if b not in ("redis", "amqp") and b.partition("://")[0] not in AMQP_SCHEMES:
            p.error(f"--brokers: {b.partition('://')[0]!r} is not redis, amqp or an amqp:// URL")
    if not args.brokers or len(set(args.brokers)) != len(args.brokers):
        p.error("--brokers: one or more brokers, each once")
    return args


AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # a RabbitMQ whose CPU can be read here


def broker_label(spec: str) -> str:
    """The column name of a broker: redis, amqp, or the URL given without its password."""
    from mlops_tasks.settings import mask_url

    return spec if spec in ("redis", "amqp") else mask_url(spec)


def score_columns(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like scores (bimodal) and labels that mostly agree with them."""
    positive = rng.random(n) < 0.3
    scores = np.where(positive, rng.beta(5, 2, n), rng.beta(2, 5, n))
    actual = np.where(rng.random(n) < 0.9, positive, ~positive).astype(np.int8)
    return np.clip(scores, 0.0, 1.0), actual


# --------------------------------------------------------------------------- phases
def phase_record_batch(srv: Any, worker: Any, model: str, events: int, size: int,
                       timeout: float, broker_url: str | None = None) -> dict[str, Any]:
    """``broker_url``: RabbitMQ (its server's CPU is read when it runs on this machine), or
    None for the store's Redis."""
    from mlops_tasks.client import MonitoringClient
    from mlops_tasks.client.publish import same_redis

    r = srv.client()
    rng = np.random.default_rng(1)
    columns = [score_columns(rng, size) for _ in range(8)]
    calls = -(-events // size)
    events = calls * size
    local = broker_url is not None and urlsplit(broker_url).hostname in LOCAL_HOSTS
    broker_pid = rabbitmq_pid() if local else None
    with MonitoringClient(broker_url=broker_url or srv.url, redis_url=srv.url,
                          overflow="block") as client:
        # Warm-up: connections, registry caches, Lua scripts of the workers.
        base_n, base_l = totals(r, model)
        for i in range(4):
            client.record_batch(model, columns[i][0], actual=columns[i][1])
        wait_until("warm-up visible", lambda: totals(r, model)[1], lambda v: v >= base_l + 4 * size,
                   timeout=60, alive=[worker])
        base_n, base_l = totals(r, model)
        sent0 = client.stats()["batches_sent"]

        worker_cpu0, redis_cpu0, client_cpu0 = tree_cpu_s(worker.pid), redis_cpu_s(r), \
            time.process_time()
        broker_cpu0 = tree_cpu_s(broker_pid) if broker_pid else 0.0
        t0 = time.monotonic()
        for i in range(calls):
            s, a = columns[i % len(columns)]
            client.record_batch(model, s, actual=a)
        t_calls = time.monotonic()
        client.flush(timeout)
        t_sent = time.monotonic()
        client_cpu = time.process_time() - client_cpu0
        (n, labeled), t_end = wait_until(
            "record_batch events visible", lambda: totals(r, model),
            lambda v: v[1] >= base_l + events, timeout=timeout, alive=[worker])
        worker_cpu, redis_cpu = tree_cpu_s(worker.pid) - worker_cpu0, redis_cpu_s(r) - redis_cpu0
        broker_cpu = tree_cpu_s(broker_pid) - broker_cpu0 if broker_pid else None
        stats = client.stats()
    elapsed = t_end - t0
    return {"broker": "amqp" if broker_url else "redis",
            "client_path": "journal + LPUSH in one MULTI/EXEC" if same_redis(
                broker_url or srv.url, srv.url, {}) else "journal, then send_task (confirmed)",
            "rabbitmq_cpu_us_per_event": None if broker_cpu is None else
            broker_cpu / events * 1e6,
            "events": events, "calls": calls, "events_per_call": size,
            "seconds": elapsed, "events_per_s": events / elapsed,
            "client_cpu_us_per_event": client_cpu / events * 1e6,
            "worker_cpu_us_per_event": worker_cpu / events * 1e6,
            "redis_cpu_us_per_event": redis_cpu / events * 1e6,
            "client_calls_s": t_calls - t0, "client_sent_s": t_sent - t0,
            "counted_predictions": n - base_n, "counted_labeled": labeled - base_l,
            "dropped": stats["dropped"], "messages": stats["batches_sent"] - sent0}


def phase_record_prediction(srv: Any, worker: Any, model: str, events: int,
                            batch_size: int | None, timeout: float) -> dict[str, Any]:
    from mlops_tasks.client import MonitoringClient

    r = srv.client()
    rng = np.random.default_rng(2)
    s, a = score_columns(rng, 65_536)
    scores = s.tolist()
    actual = [bool(x) for x in a]
    mask = len(scores) - 1
    with MonitoringClient(broker_url=srv.url, overflow="block",
                          batch_size=batch_size) as client:
        rp = client.record_prediction
        base_n, base_l = totals(r, model)
        for i in range(2_000):  # warm-up
            rp(model, scores[i], actual=actual[i])
        client.flush(30)
        wait_until("warm-up visible", lambda: totals(r, model)[1],
                   lambda v: v >= base_l + 2_000, timeout=60, alive=[worker])
        base_n, base_l = totals(r, model)
        sent0 = client.stats()["batches_sent"]

        t0 = time.monotonic()
        for i in range(events):
            j = i & mask
            rp(model, scores[j], actual=actual[j])
        t_calls = time.monotonic()
        client.flush(timeout)
        t_sent = time.monotonic()
        (n, labeled), t_end = wait_until(
            "record_prediction events visible", lambda: totals(r, model),
            lambda v: v[1] >= base_l + events, timeout=timeout, alive=[worker])
        stats = client.stats()
    elapsed = t_end - t0
    messages = stats["batches_sent"] - sent0
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed,
            "client_calls_s": t_calls - t0, "client_sent_s": t_sent - t0,
            "us_per_call": (t_calls - t0) / max(events, 1) * 1e6,
            "counted_predictions": n - base_n, "counted_labeled": labeled - base_l,
            "dropped": stats["dropped"], "messages": messages,
            "events_per_message": events / max(messages, 1),
            "client_batch_size": client.batch_size}


def phase_naive(bench: Bench, srv: Any, concurrency: int, events: int,
                timeout: float, task_events: bool) -> dict[str, Any]:
    import _naive_app as naive
    from celery import Celery

    from mlops_tasks.celery_config import producer_config
    from mlops_tasks.settings import Settings

    r = srv.client()
    worker = bench.start_celery_worker(srv, "_naive_app", concurrency, naive.QUEUE,
                                       task_events=task_events)
    try:
        producer = Celery("bench-naive-producer", set_as_current=False)
        producer.config_from_object(producer_config(Settings.from_env(), srv.url))
        key = naive.total_key("n1-detector")

        def counted() -> int:
            return int(r.hget(key, "labeled") or 0)

        def send(score: float, actual: int) -> None:
            producer.send_task(naive.TASK, args=["n1-detector", score, actual, time.time()],
                               queue=naive.QUEUE, serializer="json")

        rng = np.random.default_rng(3)
        s, a = score_columns(rng, 4096)
        scores, actual = s.tolist(), a.tolist()
        for i in range(200):  # warm-up: the worker is ready when these are counted
            send(scores[i], actual[i])
        wait_until("naive worker ready", counted, lambda v: v >= 200, timeout=60,
                   alive=[worker], interval=0.05)
        base = counted()

        t0 = time.monotonic()
        for i in range(events):
            send(scores[i & 4095], actual[i & 4095])
        t_sent = time.monotonic()
        at_sent = counted()
        done, t_end = wait_until("naive events counted", counted,
                                 lambda v: v >= base + events, timeout=timeout,
                                 alive=[worker], progress_every=5)
        producer.close()
    finally:
        bench.stop(worker)
    elapsed = t_end - t0
    left = base + events - at_sent
    return {"events": events, "task_events": task_events,
            "seconds": elapsed, "events_per_s": events / elapsed,
            "client_sent_s": t_sent - t0, "us_per_send": (t_sent - t0) / events * 1e6,
            "counted_labeled": done - base, "left_when_sent": left,
            "drain_events_per_s": left / (t_end - t_sent) if left > 0 else None}


def phase_redis_benchmark(port: int, n: int, timeout: float) -> dict[str, Any]:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return {"skipped": "redis-benchmark not on PATH"}
    cmd = [exe, "-h", "127.0.0.1", "-p", str(port), "-P", "64", "-n", str(n),
           "-t", "set,incr", "-q"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    rates: dict[str, float] = {}
    for line in re.split(r"[\r\n]+", out.stdout):
        m = re.match(r"^\s*([A-Z]+):\s*([\d.]+) requests per second", line)
        if m:
            rates[m.group(1).lower()] = float(m.group(2))
    if out.returncode != 0 or not rates:
        raise RuntimeError(f"redis-benchmark failed: {out.stderr.strip() or out.stdout[-500:]}")
    return {"command": " ".join(cmd), "requests": n, "ops_per_s": rates}


# --------------------------------------------------------------------------- main
@contextlib.contextmanager
def running_worker(bench: Bench, srv: Any, concurrency: int,
                   broker_url: str | None) -> Iterator[WorkerProc]:
    """An ``mlops worker`` for one phase, stopped after it: phases never share the CPUs with
    a worker of another broker or design."""
    worker = bench.start_mlops_worker(srv, concurrency, broker_url=broker_url)
    try:
        wait_models_registered(srv.client(), worker)
        yield worker
    finally:
        bench.stop(worker)


def main() -> int:
    args = parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    results: dict[str, Any] = {"benchmark": "ingest_throughput", "machine": machine_facts(),
                               "concurrency": args.concurrency}
    log(f"machine: {results['machine']}")
    with Bench("ingest", keep_tmp=args.keep_tmp) as bench:
        srv = bench.start_redis()
        env = bench.use_redis(srv)
        r = srv.client()

        if "a" not in skip and args.batch_events:
            by_broker: dict[str, Any] = {}
            for spec in args.brokers:
                label = broker_label(spec)
                url = None if spec == "redis" else spec
                if spec == "amqp":
                    try:
                        url = bench.rabbitmq_vhost()
                    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                        log(f"(a) with RabbitMQ as the broker skipped: {exc}")
                        by_broker[label] = {"skipped": str(exc)}
                        continue
                with running_worker(bench, srv, args.concurrency, url) as worker, \
                        phase(f"(a) record_batch, broker {label}: {args.batch_events:,} labeled "
                              f"events in calls of {args.batch_size:,}"):
                    by_broker[label] = phase_record_batch(
                        srv, worker, "n1-detector", args.batch_events, args.batch_size,
                        args.timeout, broker_url=url)
                    log(f"    {by_broker[label]['events_per_s']:,.0f} events/s")
            results["record_batch_by_broker"] = by_broker
            if "redis" in by_broker:
                results["record_batch"] = by_broker["redis"]
        if "b" not in skip and args.prediction_events:
            with running_worker(bench, srv, args.concurrency, None) as worker, \
                    phase(f"(b) record_prediction: {args.prediction_events:,} calls, one thread"):
                results["record_prediction"] = phase_record_prediction(
                    srv, worker, "waf-behavioral", args.prediction_events,
                    args.client_batch_size, args.timeout)
                log(f"    {results['record_prediction']['events_per_s']:,.0f} events/s")
        if "a" not in skip or "b" not in skip:
            summary = performance_summary(env)
            results["performance_summary"] = {
                m["name"]: {"count": m["windows"]["since_deployment"]["count"],
                            "predictions": m["windows"]["since_deployment"]["predictions"],
                            "dead_letters": m["dead_letters"]}
                for m in summary["models"]}
        results["events_queue_left"] = queue_length(r)

        if "c" not in skip and args.naive_events:
            with phase(f"(c) naive: {args.naive_events:,} Celery tasks, one per event"):
                results["naive_task_per_event"] = phase_naive(
                    bench, srv, args.concurrency, args.naive_events, args.timeout,
                    not args.naive_without_task_events)
                log(f"    {results['naive_task_per_event']['events_per_s']:,.0f} events/s")
        if "d" not in skip and args.redis_benchmark_n:
            with phase(f"(d) redis-benchmark -P 64 -n {args.redis_benchmark_n:,} -t set,incr"):
                results["redis_benchmark"] = phase_redis_benchmark(
                    srv.port, args.redis_benchmark_n, args.timeout)

    report(results)
    return 0


def report(res: dict[str, Any]) -> None:
    rows = []
    if "record_batch" in res:
        x = res["record_batch"]
        rows.append(["(a) record_batch, labeled", x["events"], x["seconds"], x["events_per_s"],
                     f">= {TARGETS['record_batch']:,}",
                     "PASS" if x["events_per_s"] >= TARGETS["record_batch"] else "BELOW"])
    if "record_prediction" in res:
        x = res["record_prediction"]
        rows.append(["(b) record_prediction, 1 thread", x["events"], x["seconds"],
                     x["events_per_s"], f">= {TARGETS['record_prediction']:,}",
                     "PASS" if x["events_per_s"] >= TARGETS["record_prediction"] else "BELOW"])
    if "naive_task_per_event" in res:
        x = res["naive_task_per_event"]
        label = "(c) naive: 1 Celery task/event" + ("" if x["task_events"] else ", no task events")
        rows.append([label, x["events"], x["seconds"],
                     x["events_per_s"], f"~{NAIVE_EXPECTED[0]:,}-{NAIVE_EXPECTED[1]:,}", ""])
    if "redis_benchmark" in res and "ops_per_s" in res["redis_benchmark"]:
        x = res["redis_benchmark"]
        for op, rate in x["ops_per_s"].items():
            rows.append([f"(d) redis-benchmark {op.upper()} -P 64", x["requests"],
                         x["requests"] / rate, rate, "ceiling", ""])
    print()
    print(f"ingest throughput, end to end (worker concurrency {res['concurrency']}, "
          f"nproc {res['machine']['nproc']})")
    print_table(["path", "events", "seconds", "events/s", "target", ""], rows)
    if "record_batch" in res and "naive_task_per_event" in res:
        ratio = res["record_batch"]["events_per_s"] / res["naive_task_per_event"]["events_per_s"]
        res["record_batch_vs_naive"] = ratio
        print(f"record_batch vs one task per event, same run: {ratio:,.0f}x "
              f"(target >= {TARGET_RATIO}x: {'PASS' if ratio >= TARGET_RATIO else 'BELOW'})")
    if len(res.get("record_batch_by_broker", {})) > 1 or "record_batch" not in res:
        report_brokers(res.get("record_batch_by_broker", {}))
    if "record_batch" in res:
        x = res["record_batch"]
        print(f"record_batch CPU per ingested event: worker {x['worker_cpu_us_per_event']:.2f} us "
              f"(main process and pool children; target <= {TARGET_WORKER_US:g}: "
              f"{'PASS' if x['worker_cpu_us_per_event'] <= TARGET_WORKER_US else 'ABOVE'}), "
              f"redis-server {x['redis_cpu_us_per_event']:.2f} us, client "
              f"{x['client_cpu_us_per_event']:.2f} us")
    if "naive_task_per_event" in res:
        x = res["naive_task_per_event"]
        drain = x["drain_events_per_s"]
        print(f"naive: send_task took {x['us_per_send']:,.0f} us per event on the sender; "
              f"after the sends finished the worker drained "
              + (f"{drain:,.0f} events/s" if drain else "nothing left") + " (CPUs not shared "
              "with the sender)")
    for name in ("record_batch", "record_prediction"):
        if name in res:
            x = res[name]
            print(f"{name}: client calls returned after {x['client_calls_s']:.2f}s, all sent "
                  f"after {x['client_sent_s']:.2f}s, visible after {x['seconds']:.2f}s; "
                  f"{x['messages']:,} messages, dropped {x['dropped']}")
    if "performance_summary" in res:
        print("mlops performance-summary --json (since_deployment): " + ", ".join(
            f"{k}: count={v['count']:,} predictions={v['predictions']:,}"
            for k, v in res["performance_summary"].items()))
    print_json(res)


def report_brokers(by_broker: dict[str, Any]) -> None:
    """(a) for each broker, side by side."""
    if not by_broker:
        return
    names = list(by_broker)
    got = {k: v for k, v in by_broker.items() if "skipped" not in v}

    def row(label: str, key: str) -> list[Any]:
        return [label, *(got[n].get(key) if n in got else "skipped" for n in names)]

    print("\n(a) record_batch by broker, same store (the private redis-server), one after the "
          "other")
    print_table(["figure", *names], [
        row("events", "events"),
        row("seconds, first call to last event counted", "seconds"),
        row("events/s end to end", "events_per_s"),
        row("client calls returned after (s)", "client_calls_s"),
        row("all sent after (s)", "client_sent_s"),
        row("messages", "messages"),
        row("dropped", "dropped"),
        row("worker CPU us/event (main + pool)", "worker_cpu_us_per_event"),
        row("redis-server CPU us/event", "redis_cpu_us_per_event"),
        row("RabbitMQ CPU us/event (beam.smp)", "rabbitmq_cpu_us_per_event"),
        row("client CPU us/event (until sent)", "client_cpu_us_per_event"),
        row("client path", "client_path"),
    ])
    for name, x in by_broker.items():
        if "skipped" in x:
            print(f"{name}: skipped: {x['skipped']}")


if __name__ == "__main__":
    run_main(main)
