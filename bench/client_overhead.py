"""Cost of ``MonitoringClient.record_prediction`` on the detector's thread.

    .venv/bin/python bench/client_overhead.py [--calls 1000000] [--repeats 10] [--concurrency 1]

The detector's thread calls ``record_prediction`` in a tight loop while the client's sender
thread runs (same process, same GIL) and ships batches to a live Redis broker, where
``mlops worker`` consumes them. The figure reported is the *amortized* cost per call: wall time
of the loop divided by the calls, so the sender thread's share of the GIL is included. The loop
is split into ``--repeats`` timed rounds (timeit style); the mean, the best and the worst round
are shown.

Variants, each with a fresh client on the library's defaults (batch 500, flush 200 ms, buffer
100,000 events, overflow "drop") unless said otherwise:

  baseline/*       the same loop calling a no-op function with the same arguments
  live/plain       record_prediction(model, score), tight loop
  live/kwargs      record_prediction(model, score, latency_ms=..., actual=...), tight loop
  live-block/*     the same with overflow="block": nothing is dropped, so this is the cost per
                   call at the highest rate the client can sustain (the caller waits for the
                   sender when the buffer is full)
  paced/kwargs     calls at a steady --paced-rate (default 100,000/s, well under what the client
                   sustains): process CPU per call (caller and sender threads together) and the
                   caller thread's own CPU per call
  latency/kwargs   each call timed on its own (paced like above): p50 / p99 / p99.9 / max, to
                   show stalls of the caller while the sender holds the client's lock
  down/plain       the broker unreachable (a closed port on 127.0.0.1): the buffer fills, then
  down/kwargs      every call is dropped (counted, logged at most every 10 s)

A tight loop produces faster than the sender ships, so in the default (drop) mode part of the
calls are dropped once the buffer is full; the dropped count is shown next to the figure.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from typing import Any

import numpy as np
from _harness import (
    Bench,
    free_port,
    log,
    machine_facts,
    phase,
    print_json,
    print_table,
    run_main,
    totals,
    wait_models_registered,
    wait_until,
)

TARGET_US = 3.0
# issue 15, at a steady 100,000 calls/s with the default settings: the caller's CPU per call, the
# process's CPU per event (caller and sender thread), and nothing dropped
TARGET_CALLER_US = 1.5
TARGET_PROCESS_US = 3.0
MODEL = "n1-detector"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=1_000_000,
                   help="record_prediction calls per variant (default 1,000,000)")
    p.add_argument("--repeats", type=int, default=10,
                   help="timed rounds the calls are split into (default 10)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="worker processes consuming the events (default 1; 0: no worker, the "
                        "messages just pile up in Redis)")
    p.add_argument("--paced-rate", type=int, default=100_000,
                   help="calls per second of the paced and latency variants (default 100,000)")
    p.add_argument("--paced-seconds", type=float, default=5.0,
                   help="duration of each paced variant (default 5 s)")
    p.add_argument("--skip-down", action="store_true", help="skip the broker-down variants")
    p.add_argument("--client-batch-size", type=int, default=None,
                   help="MonitoringClient batch_size of every variant (default: the library's, "
                        "MLOPS_CLIENT_BATCH_SIZE=500)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs)")
    args = p.parse_args()
    if args.calls < 1 or args.repeats < 1 or args.calls < args.repeats:
        p.error("--calls and --repeats must be >= 1, and --calls >= --repeats")
    if args.concurrency < 0:
        p.error("--concurrency must be >= 0")
    return args


def _inputs() -> tuple[list[float], list[float], list[bool]]:
    rng = np.random.default_rng(7)
    scores = rng.random(65_536).tolist()
    latency = (rng.lognormal(1.0, 0.6, 65_536)).tolist()
    actual = (rng.random(65_536) < 0.3).tolist()
    return scores, latency, actual


def timed_rounds(fn: Any, kwargs: bool, calls: int, repeats: int, budget_s: float
                 ) -> list[tuple[int, float]]:
    """(calls, seconds) of each round; stops early (bounded) if the budget is exceeded."""
    scores, latency, actual = _inputs()
    mask = len(scores) - 1
    per_round = calls // repeats
    rounds = []
    start = time.perf_counter()
    for _ in range(repeats):
        if kwargs:
            t0 = time.perf_counter()
            for i in range(per_round):
                j = i & mask
                fn(MODEL, scores[j], latency_ms=latency[j], actual=actual[j])
            dt = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            for i in range(per_round):
                fn(MODEL, scores[i & mask])
            dt = time.perf_counter() - t0
        rounds.append((per_round, dt))
        if time.perf_counter() - start > budget_s:
            log(f"  time budget of {budget_s:g}s used up after {len(rounds)} rounds")
            break
    return rounds


def summarize(rounds: list[tuple[int, float]]) -> dict[str, Any]:
    per_call = [dt / n * 1e6 for n, dt in rounds]
    calls = sum(n for n, _ in rounds)
    seconds = sum(dt for _, dt in rounds)
    return {"calls": calls, "seconds": seconds, "us_per_call": seconds / calls * 1e6,
            "best_round_us": min(per_call), "median_round_us": statistics.median(per_call),
            "worst_round_us": max(per_call), "rounds": len(rounds)}


def paced(fn: Any, rate: int, seconds: float, per_call: bool) -> dict[str, Any]:
    """record_prediction(model, score, latency_ms=, actual=) at a steady rate, in slices of
    1 ms; CPU per call of the process and of this thread; optionally each call's latency."""
    scores, latency, actual = _inputs()
    mask = len(scores) - 1
    total = int(rate * seconds)
    chunk = max(1, rate // 1000)
    lat = np.empty(total if per_call else 0)
    pc = time.perf_counter
    cpu0, thr0, t0 = time.process_time(), time.thread_time(), pc()
    i = 0
    behind = 0.0
    while i < total:
        end = min(total, i + chunk)
        if per_call:
            for k in range(i, end):
                j = k & mask
                a = pc()
                fn(MODEL, scores[j], latency_ms=latency[j], actual=actual[j])
                lat[k] = pc() - a
        else:
            for k in range(i, end):
                j = k & mask
                fn(MODEL, scores[j], latency_ms=latency[j], actual=actual[j])
        i = end
        due = t0 + i / rate
        now = pc()
        if due > now:
            time.sleep(due - now)
        else:
            behind = max(behind, now - due)
        if now - t0 > seconds * 3 + 10:  # bounded even if the client stalls
            log("  paced loop far behind schedule: stopped")
            break
    wall = pc() - t0
    out = {"calls": i, "seconds": wall, "rate_achieved": i / wall,
           "process_cpu_us_per_call": (time.process_time() - cpu0) / i * 1e6,
           "thread_cpu_us_per_call": (time.thread_time() - thr0) / i * 1e6,
           "max_behind_schedule_ms": behind * 1e3}
    if per_call:
        us = lat[:i] * 1e6
        out.update({"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)),
                    "p999_us": float(np.percentile(us, 99.9)), "max_us": float(us.max()),
                    "calls_over_1ms": int((us > 1000).sum())})
    return out


def run_client_variant(broker_url: str, kwargs: bool, calls: int, repeats: int,
                       live: bool, overflow: str = "drop",
                       paced_rate: int = 0, paced_seconds: float = 0.0,
                       per_call: bool = False, batch_size: int | None = None) -> dict[str, Any]:
    from mlops_tasks.client import MonitoringClient

    client = MonitoringClient(broker_url=broker_url, overflow=overflow, batch_size=batch_size)
    res: dict[str, Any] = {"overflow": overflow}
    try:
        if live:  # warm-up: connection to the broker, first messages
            for i in range(10_000):
                client.record_prediction(MODEL, 0.5, actual=bool(i & 1))
            client.flush(30)
        before = client.stats()
        if paced_rate:
            res.update(paced(client.record_prediction, paced_rate, paced_seconds, per_call))
        else:
            res.update(summarize(timed_rounds(client.record_prediction, kwargs, calls, repeats,
                                              budget_s=120)))
        after_calls = client.stats()
        if live:
            t0 = time.monotonic()
            flushed = client.flush(60)
            res["flush_after_s"] = time.monotonic() - t0
            res["flushed"] = flushed
        stats = client.stats()
        res.update({
            "recorded": stats["recorded"] - before["recorded"],
            "dropped": stats["dropped"] - before["dropped"],
            "sent": stats["sent"] - before["sent"],
            "messages": stats["batches_sent"] - before["batches_sent"],
            "max_buffered_seen": after_calls["buffered"],
            "send_failures": stats["send_failures"],
            "broker_reachable_reported": stats["broker_reachable"],
            "last_error": stats["last_error"],
        })
    finally:
        t0 = time.monotonic()
        client.close(timeout=2.0 if not live else 10.0)
        res["close_s"] = time.monotonic() - t0
        sender = client._thread  # noqa: SLF001 - close() must have stopped the sender thread
        res["sender_thread_alive_after_close"] = sender.is_alive()
    return res


def run_baseline(kwargs: bool, calls: int, repeats: int) -> dict[str, Any]:
    # record_prediction's signature with every argument unused: the cost of a call alone
    def noop(model: str, score: float, *, predicted: Any = None,  # noqa: ARG001 - see above
             actual: Any = None, prediction_id: str | None = None,  # noqa: ARG001 - see above
             version: str | None = None, latency_ms: float | None = None,  # noqa: ARG001 - see above
             timestamp: float | None = None,  # noqa: ARG001 - see above
             metadata: dict[str, Any] | None = None) -> str:  # noqa: ARG001 - see above
        return model
    return summarize(timed_rounds(noop, kwargs, calls, repeats, budget_s=60))


def main() -> int:
    args = parse_args()
    # The client's own warnings (buffer full, unsent on close) are part of the story.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="[client log] %(levelname)s %(name)s: %(message)s")
    results: dict[str, Any] = {"benchmark": "client_overhead", "machine": machine_facts(),
                               "calls_per_variant": args.calls, "concurrency": args.concurrency,
                               "client_batch_size": args.client_batch_size,
                               "variants": {}}
    log(f"machine: {results['machine']}")
    v = results["variants"]
    with Bench("client", keep_tmp=args.keep_tmp) as bench:
        srv = bench.start_redis()
        bench.use_redis(srv)
        r = srv.client()
        worker = None
        if args.concurrency:
            worker = bench.start_mlops_worker(srv, args.concurrency)
            wait_models_registered(r, worker)
        else:
            from mlops_tasks.registry import Registry, builtin_models
            from mlops_tasks.settings import Settings
            s = Settings.from_env()
            reg = Registry(r, s)
            for e in builtin_models(s):
                reg.register(e.name, e.version, e.config, actor="bench", builtin=True,
                             exist_ok=True)

        for name, kwargs in (("baseline/plain", False), ("baseline/kwargs", True)):
            with phase(f"{name}: no-op function, {args.calls:,} calls"):
                v[name] = run_baseline(kwargs, args.calls, args.repeats)
        base_n = totals(r, MODEL)[0]
        sent_live = 0
        for name, kwargs, overflow in (("live/plain", False, "drop"),
                                       ("live/kwargs", True, "drop"),
                                       ("live-block/plain", False, "block"),
                                       ("live-block/kwargs", True, "block")):
            with phase(f"{name}: record_prediction, {args.calls:,} calls, broker up"):
                v[name] = run_client_variant(srv.url, kwargs, args.calls, args.repeats,
                                             live=True, overflow=overflow,
                                             batch_size=args.client_batch_size)
                sent_live += 10_000 + v[name]["sent"]
                log(f"    {v[name]['us_per_call']:.2f} us/call, dropped {v[name]['dropped']:,}")
        for name, per_call in (("paced/kwargs", False), ("latency/kwargs", True)):
            with phase(f"{name}: {args.paced_rate:,} calls/s for {args.paced_seconds:g}s"):
                v[name] = run_client_variant(srv.url, kwargs=True, calls=0, repeats=1, live=True,
                                             paced_rate=args.paced_rate,
                                             paced_seconds=args.paced_seconds, per_call=per_call,
                                             batch_size=args.client_batch_size)
                sent_live += 10_000 + v[name]["sent"]
        if worker is not None:
            (n, _), _ = wait_until("live events counted by the worker",
                                   lambda: totals(r, MODEL), lambda t: t[0] >= base_n + sent_live,
                                   timeout=180, alive=[worker], interval=0.1)
            results["live_events_counted"] = n - base_n
            results["live_events_sent"] = sent_live

        if not args.skip_down:
            down_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
            for name, kwargs in (("down/plain", False), ("down/kwargs", True)):
                with phase(f"{name}: record_prediction, {args.calls:,} calls, broker down"):
                    v[name] = run_client_variant(down_url, kwargs, args.calls, args.repeats,
                                                 live=False, batch_size=args.client_batch_size)
                    log(f"    {v[name]['us_per_call']:.2f} us/call, "
                        f"dropped {v[name]['dropped']:,}")

    report(results)
    return 0


def report(res: dict[str, Any]) -> None:
    rows = []
    for name, x in res["variants"].items():
        if "us_per_call" not in x:
            continue
        status = ""
        if name.startswith(("live", "down")):
            status = "PASS" if x["us_per_call"] <= TARGET_US else "ABOVE"
        if name.startswith("live/") and x.get("dropped"):
            # Dropped calls are the cheap path: the figure is not the cost of a delivered event.
            status = f"n/a: {x['dropped'] / x['calls']:.0%} dropped"
        rows.append([name, x["calls"], x["us_per_call"], x["best_round_us"],
                     x["worst_round_us"], x.get("dropped"), x.get("messages"),
                     f"<= {TARGET_US:g}" if status else "", status])
    print()
    print(f"record_prediction cost on the caller's thread (amortized wall time per call in a "
          f"tight loop, sender thread running; nproc {res['machine']['nproc']})")
    print_table(["variant", "calls", "us/call", "best round", "worst round", "dropped",
                 "messages", "target", ""], rows)
    paced_rows = []
    for name in ("paced/kwargs", "latency/kwargs"):
        x = res["variants"].get(name)
        if x:
            ok = x["thread_cpu_us_per_call"] <= TARGET_CALLER_US and \
                x["process_cpu_us_per_call"] <= TARGET_PROCESS_US and x["dropped"] == 0
            paced_rows.append([name, x["calls"], x["rate_achieved"], x["process_cpu_us_per_call"],
                               x["thread_cpu_us_per_call"], x.get("p50_us"), x.get("p99_us"),
                               x.get("p999_us"), x.get("max_us"), x["dropped"],
                               "PASS" if ok else "MISSED"])
    if paced_rows:
        print()
        print("at a steady rate: CPU per call (process = caller + sender thread) and, timed one "
              "by one, the caller's latency per call; targets: process <= "
              f"{TARGET_PROCESS_US:g} us, caller <= {TARGET_CALLER_US:g} us, nothing dropped")
        print_table(["variant", "calls", "calls/s", "process CPU us", "caller CPU us",
                     "p50 us", "p99 us", "p99.9 us", "max us", "dropped", ""], paced_rows)
    if "live_events_counted" in res:
        print(f"live events counted by the worker: {res['live_events_counted']:,} of "
              f"{res['live_events_sent']:,} sent")
    for name in ("down/plain", "down/kwargs"):
        if name in res["variants"]:
            x = res["variants"][name]
            print(f"{name}: send_failures={x['send_failures']} "
                  f"broker_reachable reported={x['broker_reachable_reported']} "
                  f"close() took {x['close_s']:.1f}s, sender thread alive after close: "
                  f"{x['sender_thread_alive_after_close']}")
    print_json(res)


if __name__ == "__main__":
    run_main(main)
