"""Redis memory of the ingest path: per prediction awaiting its label, and in total as labeled
events stream through (which must not grow with the number of events).

    .venv/bin/python bench/memory.py [--pending 1000000] [--events 10000000] [--concurrency 2]

Part a, pending predictions: ``record_batch`` of ``--pending`` unlabeled predictions of
n1-detector (no ``actual=``), through ``mlops worker``; once ``mlops:{n1-detector}:pending:meta``
``count`` has grown by that many, ``(used_memory after - before) / N`` from ``INFO memory``.
Also: ``MEMORY USAGE`` summed over the pending buckets / N (the table alone), and the
``OBJECT ENCODING`` and size of the buckets (listpack expected).

Part b, totals: ``--events`` labeled events of waf-behavioral through the real pipeline
(``record_batch`` with ``actual=``, calls of 10,000), timestamps cycling over the 60 minutes of
the last hour (``timestamp=``), so every minute, hour and day bucket of that hour exists after the
first 600,000 events and the later events only make the same hour denser. At 1M, 5M and 10M
events (or the fractions 10 %, 50 %, 100 % of ``--events``) the client is flushed, the workers
drain the queue, and ``used_memory`` is read. Keys are counted by family; the batch markers
(``mlops:{m}:done:<batch>``, one per message, kept two visibility timeouts plus 10 minutes) are
the one family that grows with the number of events, so their count and size are shown.

Part c, duplicate detection: ``--dedup`` one-event messages applied by the worker's ``Ingestor``
in this process, first with an unsequenced id each (a done marker per message, the design that
shipped first), then numbered per producer (``--producers``, interleaved, each message overtaking
up to 8 others): the keys each design leaves, their ``MEMORY USAGE`` and the ``used_memory`` delta.

Redis runs with ``--save "" --appendonly no``; the client uses ``overflow="block"`` (nothing is
dropped).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Any

import numpy as np
import redis
from _harness import (
    Bench,
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

PENDING_TARGET_BYTES = 32
PENDING_MODEL = "n1-detector"
STREAM_MODEL = "waf-behavioral"
CALL = 10_000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pending", type=int, default=1_000_000,
                   help="unlabeled predictions of part a (default 1,000,000; 0 skips part a)")
    p.add_argument("--events", type=int, default=10_000_000,
                   help="labeled events of part b (default 10,000,000; 0 skips part b); "
                        "checkpoints at 10%%, 50%% and 100%%")
    p.add_argument("--dedup", type=int, default=100_000,
                   help="one-event messages of part c (default 100,000; 0 skips part c)")
    p.add_argument("--producers", type=int, default=16,
                   help="producers interleaved in part c (default 16)")
    p.add_argument("--concurrency", type=int, default=2,
                   help="worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="give up waiting for a checkpoint after this many seconds (default 300)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs)")
    args = p.parse_args()
    if args.pending < 0 or args.events < 0 or args.dedup < 0 or args.concurrency < 1 \
            or args.producers < 1:
        p.error("--pending/--events/--dedup must be >= 0, --concurrency and --producers >= 1")
    return args


def mem(r: redis.Redis) -> dict[str, int]:
    info = r.info("memory")
    return {k: int(info[k]) for k in ("used_memory", "used_memory_dataset", "used_memory_rss")}


def drained(r: redis.Redis, worker: Any, timeout: float = 60.0) -> None:
    """The events queue is empty and no message is still unacknowledged (kombu's
    ``unacked`` hash), so no message body is counted in the memory figures."""
    def probe() -> tuple[int, int]:
        return int(r.llen("mlops.events")), int(r.hlen("unacked"))
    wait_until("queue drained and acknowledged", probe, lambda v: v == (0, 0),
               timeout=timeout, interval=0.02, alive=[worker])
    time.sleep(0.2)  # let client query buffers of the last EVALSHA be released


def scan_keys(r: redis.Redis, pattern: str, limit: int = 2_000_000) -> list[str]:
    out = []
    for k in r.scan_iter(match=pattern, count=5000):
        out.append(k)
        if len(out) >= limit:
            break
    return out


def family_counts(r: redis.Redis) -> dict[str, int]:
    from mlops_tasks.keys import family

    return dict(Counter(family(k) for k in scan_keys(r, "mlops:*")))


def memory_usage(r: redis.Redis, keys: list[str]) -> list[int]:
    out: list[int] = []
    for i in range(0, len(keys), 2000):
        pipe = r.pipeline(transaction=False)
        for k in keys[i:i + 2000]:
            pipe.memory_usage(k, samples=0)
        out.extend(int(x or 0) for x in pipe.execute())
    return out


# --------------------------------------------------------------------------- part a
def part_pending(srv: Any, worker: Any, n: int, timeout: float) -> dict[str, Any]:
    from mlops_tasks.client import MonitoringClient

    r = srv.client()
    meta = f"mlops:{{{PENDING_MODEL}}}:pending:meta"

    def count() -> int:
        return int(r.hget(meta, "count") or 0)

    rng = np.random.default_rng(11)
    columns = [np.clip(rng.beta(2, 5, CALL), 0, 1) for _ in range(8)]
    calls = -(-n // CALL)
    n = calls * CALL
    with MonitoringClient(broker_url=srv.url, overflow="block") as client:
        # Warm-up: the table, its meta and the aggregate buckets of this minute exist.
        for i in range(2):
            client.record_batch(PENDING_MODEL, columns[i])
        client.flush(30)
        wait_until("warm-up pending", count, lambda c: c >= 2 * CALL, timeout=60, alive=[worker])
        drained(r, worker)
        base_count = count()
        before = mem(r)
        t0 = time.monotonic()
        for i in range(calls):
            client.record_batch(PENDING_MODEL, columns[i % len(columns)])
        client.flush(timeout)
        final, t_end = wait_until("pending count", count, lambda c: c >= base_count + n,
                                  timeout=timeout, alive=[worker])
    drained(r, worker)
    after = mem(r)
    added = final - base_count

    buckets = [k for k in scan_keys(r, f"mlops:{{{PENDING_MODEL}}}:pending:*") if k != meta]
    usage = memory_usage(r, buckets)
    pipe = r.pipeline(transaction=False)
    for k in buckets:
        pipe.object("encoding", k)
        pipe.hlen(k)
    replies = pipe.execute()
    encodings = Counter(replies[0::2])
    sizes = replies[1::2]
    sample = {k: r.object("encoding", k) for k in sorted(buckets, key=_bucket_no)[:5]}
    level, split = r.hmget(meta, "level", "split")
    return {
        "predictions": added, "seconds": t_end - t0, "events_per_s": n / (t_end - t0),
        "used_memory_before": before["used_memory"], "used_memory_after": after["used_memory"],
        "bytes_per_pending": (after["used_memory"] - before["used_memory"]) / added,
        "dataset_bytes_per_pending": (after["used_memory_dataset"]
                                      - before["used_memory_dataset"]) / added,
        "table_bytes_per_pending": sum(usage) / final,
        "table_entries": final,
        "buckets": len(buckets), "linear_hash_level": int(level or 0),
        "linear_hash_split": int(split or 0),
        "entries_per_bucket": {"min": min(sizes), "mean": statistics.fmean(sizes),
                               "max": max(sizes)},
        "encodings": dict(encodings), "sample_encodings": sample,
        "hash_max_listpack_entries": int(r.config_get("hash-max-listpack-entries")
                                         ["hash-max-listpack-entries"]),
    }


def _bucket_no(key: str) -> int:
    tail = key.rsplit(":", 1)[1]
    return int(tail) if tail.isdigit() else -1


# --------------------------------------------------------------------------- part b
def part_stream(srv: Any, worker: Any, events: int, timeout: float) -> dict[str, Any]:
    from mlops_tasks.client import MonitoringClient

    r = srv.client()
    calls = -(-events // CALL)
    checkpoints = sorted({max(1, round(calls * f)) for f in (0.1, 0.5, 1.0)})
    rng = np.random.default_rng(12)
    cols = []
    for _ in range(8):
        positive = rng.random(CALL) < 0.3
        s = np.clip(np.where(positive, rng.beta(5, 2, CALL), rng.beta(2, 5, CALL)), 0, 1)
        a = np.where(rng.random(CALL) < 0.9, positive, ~positive).astype(np.int8)
        cols.append((s, a))
    hour_start = int(time.time() // 60) * 60 - 3600  # the 60 minutes before this one

    _, base_l = totals(r, STREAM_MODEL)
    drained(r, worker)
    start_mem = mem(r)
    start_keys = family_counts(r)
    start_markers = len(scan_keys(r, f"mlops:{{{STREAM_MODEL}}}:done:*"))
    points: list[dict[str, Any]] = []
    t0 = time.monotonic()
    done = 0
    with MonitoringClient(broker_url=srv.url, overflow="block") as client:
        for cp in checkpoints:
            while done < cp:
                s, a = cols[done % len(cols)]
                ts = hour_start + (done % 60) * 60 + 1 + (done // 60) % 58
                client.record_batch(STREAM_MODEL, s, actual=a, timestamp=float(ts))
                done += 1
            client.flush(timeout)
            target = base_l + done * CALL
            (_, labeled), t_seen = wait_until(
                f"{done * CALL:,} labeled events counted", lambda: totals(r, STREAM_MODEL),
                lambda v, want=target: v[1] >= want, timeout=timeout, alive=[worker])
            drained(r, worker)
            m = mem(r)
            fam = family_counts(r)
            markers = scan_keys(r, f"mlops:{{{STREAM_MODEL}}}:done:*")
            marker_bytes = sum(memory_usage(r, markers[:200])) / max(1, min(200, len(markers)))
            points.append({"events": labeled - base_l, "elapsed_s": t_seen - t0, **m,
                           "keys": fam, "batch_markers": len(markers),
                           "bytes_per_marker": marker_bytes})
            log(f"    {labeled - base_l:>12,} events: used_memory {m['used_memory']:,} B, "
                f"{len(markers):,} batch markers")
    first, last = points[0], points[-1]
    growth = last["used_memory"] - first["used_memory"]
    marker_growth = (last["batch_markers"] - first["batch_markers"]) * last["bytes_per_marker"]
    return {"events": last["events"], "seconds": last["elapsed_s"],
            "events_per_s": last["events"] / last["elapsed_s"],
            "start": {**start_mem, "keys": start_keys, "batch_markers": start_markers},
            "checkpoints": points,
            "growth_first_to_last_bytes": growth,
            "growth_bytes_per_event": growth / max(1, last["events"] - first["events"]),
            "growth_from_batch_markers_bytes": marker_growth,
            "growth_other_bytes": growth - marker_growth,
            "ratio_last_to_first": last["used_memory"] / first["used_memory"]}


# --------------------------------------------------------------------------- part c
def part_dedup(srv: Any, messages: int, producers: int) -> dict[str, Any]:
    """Duplicate detection, the two designs side by side on the same Redis: ``messages``
    one-event batches applied by the worker's Ingestor, once with unsequenced ids (a done
    marker per message, the design that shipped first and the fallback for foreign producers)
    and once numbered per producer (the watermark the client's ids use), ``producers``
    producers interleaved, each message overtaking up to 8 others."""
    import uuid

    from mlops_tasks.ingest.pipeline import Ingestor
    from mlops_tasks.registry import Registry
    from mlops_tasks.settings import Settings

    settings = Settings.from_env({})
    registry = Registry(redis.Redis.from_url(srv.url, decode_responses=True), settings)
    ingestor = Ingestor(settings, registry, redis.Redis.from_url(srv.url))
    r = srv.client()
    model = PENDING_MODEL
    rng = np.random.default_rng(13)
    now = time.time()

    def ingest(batch_ids: list[str]) -> tuple[int, float]:
        before = r.info("memory")["used_memory"]
        t0 = time.monotonic()
        for bid in batch_ids:
            ingestor.ingest_predictions({"v": 1, "kind": "predictions", "batch_id": bid,
                                         "model": model, "n": 1, "score": [0.5], "actual": [1],
                                         "timestamp": now})
        return r.info("memory")["used_memory"] - before, time.monotonic() - t0

    markers_delta, markers_s = ingest([uuid.uuid4().hex for _ in range(messages)])
    markers = scan_keys(r, f"mlops:{{{model}}}:done:*")
    marker_bytes = sum(memory_usage(r, markers))

    names = [f"{i:012x}" for i in range(1, producers + 1)]
    order = [f"{names[i % producers]}.{i // producers + 1}" for i in range(messages)]
    for i in range(0, messages, 8):  # workers overtake each other
        window = order[i:i + 8]
        rng.shuffle(window)
        order[i:i + 8] = window
    seen_delta, seen_s = ingest(order)
    seen = scan_keys(r, f"mlops:{{{model}}}:seen:*")
    seen_bytes = sum(memory_usage(r, seen))
    rate = 100_000 / 500  # messages/s at 100,000 events/s in 500-event messages
    return {"messages": messages, "producers": producers,
            "markers": {"keys": len(markers), "bytes": marker_bytes,
                        "used_memory_delta": markers_delta,
                        "bytes_per_message": marker_bytes / messages,
                        "messages_per_s": messages / markers_s,
                        "at_100k_events_per_s": rate * 7800 * marker_bytes / len(markers)},
            "watermark": {"keys": len(seen), "bytes": seen_bytes,
                          "used_memory_delta": seen_delta,
                          "bytes_per_producer": seen_bytes / max(1, len(seen)),
                          "messages_per_s": messages / seen_s}}


# --------------------------------------------------------------------------- main
def main() -> int:
    args = parse_args()
    results: dict[str, Any] = {"benchmark": "memory", "machine": machine_facts(),
                               "concurrency": args.concurrency}
    log(f"machine: {results['machine']}")
    with Bench("memory", keep_tmp=args.keep_tmp) as bench:
        srv = bench.start_redis()
        bench.use_redis(srv)
        r = srv.client()
        worker = bench.start_mlops_worker(srv, args.concurrency)
        wait_models_registered(r, worker)
        results["redis_start"] = mem(r)
        if args.pending:
            with phase(f"(a) {args.pending:,} unlabeled predictions awaiting their label"):
                results["pending"] = part_pending(srv, worker, args.pending, args.timeout)
        if args.events:
            with phase(f"(b) {args.events:,} labeled events, one hour of timestamps"):
                results["stream"] = part_stream(srv, worker, args.events, args.timeout)
        if args.dedup:
            with phase(f"(c) duplicate detection, {args.dedup:,} messages, two designs"):
                results["dedup"] = part_dedup(srv, args.dedup, args.producers)
    report(results)
    return 0


def report(res: dict[str, Any]) -> None:
    print()
    if "pending" in res:
        x = res["pending"]
        print(f"(a) predictions awaiting their label: {x['predictions']:,} "
              f"({x['events_per_s']:,.0f} events/s through the pipeline)")
        ok = x["bytes_per_pending"] <= PENDING_TARGET_BYTES
        print_table(["measure", "bytes / pending prediction", "target", ""], [
            ["INFO used_memory (after - before) / N", x["bytes_per_pending"],
             f"<= {PENDING_TARGET_BYTES}", "PASS" if ok else "ABOVE"],
            ["INFO used_memory_dataset (after - before) / N", x["dataset_bytes_per_pending"], "",
             ""],
            ["sum MEMORY USAGE of pending buckets / entries", x["table_bytes_per_pending"], "",
             ""],
        ])
        e = x["entries_per_bucket"]
        print(f"pending buckets: {x['buckets']:,} (linear hashing level {x['linear_hash_level']},"
              f" split {x['linear_hash_split']}), entries per bucket min {e['min']} / mean "
              f"{e['mean']:.1f} / max {e['max']} (hash-max-listpack-entries "
              f"{x['hash_max_listpack_entries']}); encodings {x['encodings']}")
        print("OBJECT ENCODING samples: " + ", ".join(f"{k} -> {v}"
                                                     for k, v in x["sample_encodings"].items()))
        print()
    if "stream" in res:
        x = res["stream"]
        print(f"(b) Redis memory as labeled events stream through the pipeline "
              f"({x['events_per_s']:,.0f} events/s)")
        rows = [["start", 0, res["stream"]["start"]["used_memory"],
                 res["stream"]["start"]["used_memory_dataset"], sum(x["start"]["keys"].values()),
                 x["start"]["batch_markers"]]]
        rows.extend([f"after {p['events'] / 1e6:g}M", p["events"], p["used_memory"],
                     p["used_memory_dataset"], sum(p["keys"].values()), p["batch_markers"]]
                    for p in x["checkpoints"])
        print_table(["point", "events", "used_memory", "dataset", "mlops keys",
                     f"{STREAM_MODEL} batch markers"], rows)
        print(f"growth from {x['checkpoints'][0]['events']:,} to {x['events']:,} events: "
              f"{x['growth_first_to_last_bytes']:,} B ({x['growth_bytes_per_event']:.4f} B/event, "
              f"x{x['ratio_last_to_first']:.3f}); of which batch markers "
              f"~{x['growth_from_batch_markers_bytes']:,.0f} B "
              f"(~{x['checkpoints'][-1]['bytes_per_marker']:.0f} B each, "
              "kept 2 x MLOPS_VISIBILITY_TIMEOUT_S + 600 s), "
              f"other {x['growth_other_bytes']:,.0f} B")
        print("keys by family at the end: " + ", ".join(
            f"{k}={v}" for k, v in sorted(x["checkpoints"][-1]["keys"].items())))
    if "dedup" in res:
        x = res["dedup"]
        m, w = x["markers"], x["watermark"]
        print(f"\n(c) duplicate detection after {x['messages']:,} one-event messages")
        print_table(["design", "keys", "bytes (MEMORY USAGE)", "used_memory delta",
                     "per", "messages/s"], [
            ["a done marker per message (TTL 7,800 s)", m["keys"], m["bytes"],
             m["used_memory_delta"], f"{m['bytes_per_message']:.0f} B / message",
             m["messages_per_s"]],
            [f"watermark per producer ({x['producers']} producers)", w["keys"], w["bytes"],
             w["used_memory_delta"], f"{w['bytes_per_producer']:.0f} B / producer",
             w["messages_per_s"]],
        ])
        print(f"markers at 100,000 events/s in 500-event messages, kept 7,800 s: "
              f"{m['at_100k_events_per_s'] / 1e6:,.0f} MB; the watermark stays "
              f"{w['bytes_per_producer']:.0f} B per producer whatever the traffic")
    print_json(res)


if __name__ == "__main__":
    run_main(main)
