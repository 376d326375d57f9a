"""Where the ingest path spends its CPU: cProfile of the client's and the worker's side, in this
process, against a private redis-server (no worker process, nothing timed against a target).

    .venv/bin/python bench/profile_ingest.py [--calls 200000] [--batches 40] [--top 15]

  client/record_prediction  ``record_prediction(model, score, latency_ms=, actual=)`` calls on
                            the caller's thread (the sender thread asleep: nothing is sent)
  client/sender             the sender's work for those events, run on this thread: building
                            the messages, journaling and sending them to the broker
  client/record_batch       ``record_batch`` of 10,000 labeled scores, calls and sending
  worker/ingest             what a prefork worker does per message: the main process decodes
                            the body (``codec.bounded_loads``), the pool child decodes it again
                            and runs ``Ingestor.ingest_predictions`` (one Lua call per batch)

Each section prints the CPU per event and the functions with the most own time (``tottime``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import threading
import time
from typing import Any

import numpy as np
from _harness import Bench, log, phase, run_main

MODEL = "n1-detector"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=200_000,
                   help="record_prediction calls (default 200,000)")
    p.add_argument("--batches", type=int, default=40,
                   help="record_batch calls of 10,000 events (default 40)")
    p.add_argument("--top", type=int, default=15, help="functions shown per section")
    return p.parse_args()


def show(name: str, prof: cProfile.Profile, events: int, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]  # set by Stats, not in the stubs
    print(f"\n=== {name}: {total:.3f}s profiled for {events:,} events, "
          f"{total / events * 1e6:.2f} us per event (profiler overhead included)")
    stats.sort_stats("tottime").print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, x in enumerate(lines) if "ncalls" in x)
    print("\n".join(lines[start:start + top + 1]))


def profile_client(url: str, calls: int, batches: int, top: int) -> None:
    from mlops_tasks.client import MonitoringClient

    rng = np.random.default_rng(7)
    scores = rng.random(65_536).tolist()
    latency = rng.lognormal(1.0, 0.6, 65_536).tolist()
    actual = (rng.random(65_536) < 0.3).tolist()
    mask = 65_535
    # the sender thread sleeps (no size or age trigger): its work is run below, on this thread
    client = MonitoringClient(url, redis_url=url, batch_size=10**9, flush_interval_ms=10**9,
                              max_buffer=10**8)
    # the sender thread waits on the buffer's first wake event: give the buffer another, so
    # that the sender's work runs only when called here
    client._buffer.wake = threading.Event()  # noqa: SLF001 - profiling the sender's steps
    try:
        client.record_prediction(MODEL, 0.5)
        client._sender.send_pending()  # noqa: SLF001 - connect before profiling
        rp = client.record_prediction
        prof = cProfile.Profile()
        prof.enable()
        for i in range(calls):
            j = i & mask
            rp(MODEL, scores[j], latency_ms=latency[j], actual=actual[j])
        prof.disable()
        show("client/record_prediction (caller thread)", prof, calls, top)
        prof = cProfile.Profile()
        prof.enable()
        client._sender.send_pending()  # noqa: SLF001 - the sender thread's work, profiled here
        prof.disable()
        show("client/sender (messages, journal, send)", prof, calls, top)

        s = np.asarray(scores[:10_000])
        a = np.asarray(actual[:10_000], dtype=np.int8)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(batches):
            client.record_batch(MODEL, s, actual=a)
            client._sender.send_pending()  # noqa: SLF001 - see above
        prof.disable()
        show("client/record_batch (calls and sending)", prof, batches * 10_000, top)
    finally:
        client._sender.send_pending()  # noqa: SLF001 - nothing left behind
        client.close(timeout=0.1)


def profile_worker(url: str, batches: int, top: int) -> None:
    import base64

    import redis

    from mlops_tasks.client import MonitoringClient
    from mlops_tasks.ingest import codec
    from mlops_tasks.ingest.pipeline import Ingestor
    from mlops_tasks.queues import EVENTS_QUEUE
    from mlops_tasks.registry import Registry
    from mlops_tasks.settings import Settings

    settings = Settings.from_env()
    raw = redis.Redis.from_url(url)
    ingestor = Ingestor(settings, Registry(redis.Redis.from_url(url, decode_responses=True),
                                           settings), raw)
    rng = np.random.default_rng(1)
    # the bodies exactly as the client sends them: taken off the queue
    raw.delete(EVENTS_QUEUE)
    with MonitoringClient(url, redis_url=url, overflow="block") as client:
        for _ in range(batches):
            n = 10_000
            s = rng.random(n)
            client.record_batch(MODEL, s, actual=(rng.random(n) < s).astype(np.int8))
        client.flush(60)
    bodies = []
    for item in raw.lrange(EVENTS_QUEUE, 0, -1):
        envelope = json.loads(item)
        bodies.append(envelope["body"])  # base64 of the task body, as kombu keeps it
    raw.delete(EVENTS_QUEUE)
    decoded_bodies = [base64.b64decode(b) for b in bodies]
    log(f"{len(bodies)} messages, {sum(map(len, decoded_bodies)) / len(bodies):,.0f} bytes each")
    events = 0
    redis_cpu0 = _redis_cpu(raw)
    cpu0 = time.process_time()
    for body in decoded_bodies[:2]:  # warm-up: scripts loaded, caches filled
        ingestor.ingest_predictions(codec.bounded_loads(body)[0][0])
    prof = cProfile.Profile()
    prof.enable()
    for body in decoded_bodies[2:]:
        codec.bounded_loads(body)  # the main process (Celery reads the payload)
        args = codec.bounded_loads(body)[0]  # the pool child
        events += ingestor.ingest_predictions(args[0])["accepted"]
    prof.disable()
    cpu = time.process_time() - cpu0
    redis_cpu = _redis_cpu(raw) - redis_cpu0
    show("worker/ingest (decode twice, validate, aggregate, one Lua call)", prof, events, top)
    print(f"worker/ingest without the profiler's overhead: this process {cpu / events * 1e6:.2f} "
          f"us CPU per event, redis-server {redis_cpu / events * 1e6:.2f} us CPU per event")


def _redis_cpu(r: Any) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> int:
    args = parse_args()
    with Bench("profile") as bench:
        srv = bench.start_redis()
        bench.use_redis(srv)
        from mlops_tasks.registry import Registry, builtin_models
        from mlops_tasks.settings import Settings

        s = Settings.from_env()
        reg = Registry(srv.client(), s)
        for e in builtin_models(s):
            reg.register(e.name, e.version, e.config, actor="bench", builtin=True, exist_ok=True)
        t0 = time.monotonic()
        with phase("client"):
            profile_client(srv.url, args.calls, args.batches, args.top)
        with phase("worker"):
            profile_worker(srv.url, args.batches, args.top)
        log(f"done in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    run_main(main)
