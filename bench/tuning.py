"""Threshold search and whole tuning runs: how long auto-tuning takes, and whether it stays flat
as the tuning window grows.

    .venv/bin/python bench/tuning.py [--quick] [--part-a-n 1000000] [--sizes 10000,...]
        [--runs 20] [--batch-size 50000] [--skip a|b]

Part A, "grid search over raw predictions", on ONE core (BLAS/OpenMP pools limited to one thread
through the environment before numpy is imported, threadpoolctl when installed, and the process
pinned to one CPU with sched_setaffinity): ``--part-a-n`` labeled predictions (uniform random
scores, label positive with probability = score) and the 81 thresholds 0.10, 0.11, ..., 0.90,
timed side by side in the same run (best of a few repetitions each):

  a. scikit-learn ``f1_score`` once per threshold (81 calls);
  b. numpy broadcasting: ``scores[None, :] >= thresholds[:, None]``, then counts per row;
  c. ``sklearn.metrics.precision_recall_curve(drop_intermediate=False)``, then read at each grid
     threshold: the first distinct score >= t (``searchsorted(side="left")``), or the curve's
     sentinel (precision 1, recall 0: nothing predicted positive) past the highest score;
  d. one sort per class plus ``searchsorted``: ``tuning.grid.from_scores``;
  e. the project's way: ``binning.score_bins`` + one ``np.bincount`` (what ingest stores), then
     ``tuning.grid.from_histograms``; timed with and without the binning + bincount.

Every approach must give the same F1 at every threshold within 1e-9 (checked on the timed data and
again, untimed, on scores on the 0.001 lattice where many equal the thresholds exactly).

Part B, "whole tuning run of one model": n1-detector (catalogue configuration: threshold 0.6, grid
0.50..0.90 step 0.05, metric f1, window 3600 s in minute buckets) deployed on a private
redis-server; labeled predictions are ingested with ``Ingestor.ingest_predictions`` (batches of
``--batch-size``, every event's timestamp uniform over the last hour, so all 61 minute buckets of
the window fill; a few distinct batch contents are reused with new batch ids and new timestamps)
until the window holds each of ``--sizes`` (cumulative: 10k, 100k, 1M, 10M; ``--quick`` stops at
1M). Labels follow ``(score >= 0.75) XOR (5 % noise)``, so the best threshold (0.75) beats the
current one by far more than the 5 % minimum and every run goes through the bootstrap (2,000
resamples) before stopping at ``dry_run``. At each size: the median of ``--runs`` calls of
``tuning.engine.tune(svc, target, dry_run=True)`` (clock fixed, so the window never slides), its
breakdown (``windows.time_window`` with the bare Redis pipeline separately, ``engine.evaluate``,
``grid.bootstrap_improvement``), the same run with an 81-point grid (0.10..0.90 step 0.01),
``run_tuning(svc, model, dry_run=True)`` (adds the lock and the registry reads), and the bytes
Redis sends per run (``INFO stats`` ``total_net_output_bytes`` deltas, corrected for the INFO
reply itself). Target: tune under 20 ms and flat from 10k to 10M.

Progress goes to stderr; stdout gets the results tables and, as its last line, one JSON document
with every figure. The redis-server (``--save "" --appendonly no``, 127.0.0.1, free port, temp
folder) is stopped and the folder deleted at the end, also on Ctrl-C, SIGTERM or an error (and it
gets a parent-death signal). No project setting of the environment is used: Settings come from an
empty environment and the server URL is passed explicitly.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import functools
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

# One core for the numeric work: must be set before numpy (and its BLAS/OpenMP) is imported.
# (GNU nproc honours OMP_NUM_THREADS, so it is run with the environment as it was.)
_ORIGINAL_ENV = dict(os.environ)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402 - after the thread limits

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mlops_tasks import keys  # noqa: E402 - after the thread limits
from mlops_tasks.binning import SCORE_BINS, score_bins  # noqa: E402 - after the thread limits
from mlops_tasks.embedded import find_server_binary  # noqa: E402 - after the thread limits
from mlops_tasks.tuning import grid as g  # noqa: E402 - after the thread limits

HOST = "127.0.0.1"
MODEL = "n1-detector"
TARGET_MS = 20.0
F1_TOLERANCE = 1e-9
DEFAULT_SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
QUICK_MAX = 1_000_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"Part B only up to {QUICK_MAX:,} predictions in the window")
    p.add_argument("--skip", default="", help="skip a part: a or b")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--part-a-n", type=int, default=1_000_000,
                   help="labeled predictions of Part A (default 1,000,000)")
    p.add_argument("--part-a-reps", type=int, default=5,
                   help="repetitions per approach, best kept (default 5; the 81 f1_score calls "
                        "get at most 3)")
    p.add_argument("--part-a-budget", type=float, default=60.0,
                   help="seconds each approach may spend on repetitions (default 60)")
    p.add_argument("--tie-n", type=int, default=200_000,
                   help="predictions of the untimed check on lattice scores (default 200,000)")
    p.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                   help="window sizes of Part B, ascending (default 10k,100k,1M,10M)")
    p.add_argument("--batch-size", type=int, default=50_000,
                   help="predictions per ingest batch, 10,000-100,000 (default 50,000)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per figure (default 20)")
    p.add_argument("--run-budget", type=float, default=20.0,
                   help="seconds each timed figure may take at most (default 20)")
    p.add_argument("--ingest-timeout", type=float, default=900.0,
                   help="give up ingesting after this many seconds in total (default 900)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder")
    args = p.parse_args()
    args.sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if args.quick:
        args.sizes = [s for s in args.sizes if s <= QUICK_MAX]
    if not 10_000 <= args.batch_size <= 100_000:
        p.error("--batch-size: expected 10,000 to 100,000")
    if args.skip not in ("", "a", "b"):
        p.error("--skip: expected a or b")
    return args


def reproduce_command() -> str:
    py = sys.executable
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        py = ".venv/bin/python"
    return f"cd {shlex.quote(str(ROOT))} && " + " ".join(
        [py, "bench/tuning.py", *(shlex.quote(a) for a in sys.argv[1:])])


# --------------------------------------------------------------------------- the private Redis
def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _parent_death_signal() -> None:
    """Runs in the child before exec: SIGTERM it when the benchmark dies (even SIGKILLed)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.binary = find_server_binary()
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        for attempt in range(3):  # the free port may be taken between the probe and the bind
            self.port = _free_port()
            logfile = self.folder / f"redis-{attempt}.log"
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", HOST, "--save", "",
                 "--appendonly", "no", "--dir", str(self.folder), "--logfile", str(logfile),
                 "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_parent_death_signal,  # noqa: PLW1509 - prctl works only in the child
                start_new_session=True)
            client = redis.Redis(host=HOST, port=self.port, socket_connect_timeout=0.5,
                                 socket_timeout=2)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self.proc.poll() is None:
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        client.close()
                        log(f"redis-server {self.version()} (pid {self.proc.pid}) on {self.url}")
                        return
                time.sleep(0.05)
            client.close()
            self.stop()
        raise RuntimeError(f"redis-server ({self.binary}) did not start; see {self.folder}")

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
        for word in out.split():
            if word.startswith("v="):
                return word[2:]
        return out.strip()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------- timing helpers
def best_of(fn: Callable[[], Any], reps: int, budget_s: float,
            min_loop_s: float = 0.05) -> dict[str, Any]:
    """Best (lowest) time per call. The first call is timed too: kept as a repetition when it
    is slow (>= min_loop_s); fast functions are instead looped ``number`` times per repetition
    so that each repetition lasts about ``min_loop_s``. Bounded by ``reps`` and ``budget_s``."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    deadline = t0 + budget_s
    if first >= min_loop_s:
        number, times = 1, [first]
    else:
        number, times = min(100_000, max(1, int(min_loop_s / max(first, 1e-7)))), []
    while len(times) < reps and (time.perf_counter() < deadline or not times):
        s = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - s) / number)
    return {"best_s": min(times), "reps": len(times), "number": number, "result": result}


def median_of(fn: Callable[[], Any], runs: int, budget_s: float,
              warmup: int = 3) -> dict[str, Any]:
    """Median, min, p90 and max of single calls (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < runs and (time.perf_counter() < deadline or len(times) < 3):
        s = time.perf_counter()
        fn()
        times.append(time.perf_counter() - s)
    ts = sorted(times)
    return {"median_ms": statistics.median(ts) * 1e3, "min_ms": ts[0] * 1e3,
            "p90_ms": ts[min(len(ts) - 1, round(0.9 * (len(ts) - 1)))] * 1e3,
            "max_ms": ts[-1] * 1e3, "runs": len(ts)}


@contextlib.contextmanager
def one_core() -> Iterator[dict[str, Any]]:
    """Pin this process to one CPU and limit the native thread pools to one thread."""
    info: dict[str, Any] = {"omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
            stack.enter_context(threadpool_limits(limits=1))
            info["threadpoolctl"] = True
        except ImportError:
            info["threadpoolctl"] = False
        if before:
            cpu = min(before)
            os.sched_setaffinity(0, {cpu})
            info["pinned_cpu"] = cpu
        try:
            yield info
        finally:
            if before:
                os.sched_setaffinity(0, before)


# --------------------------------------------------------------------------- Part A
def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    return g._div(2 * tp, 2 * tp + fp + fn)  # noqa: SLF001 - the grid's own division


def approach_sklearn_loop(scores: np.ndarray, actual: np.ndarray,
                          thresholds: np.ndarray) -> np.ndarray:
    from sklearn.metrics import f1_score
    return np.array([f1_score(actual, scores >= t, zero_division=np.nan) for t in thresholds],
                    dtype=np.float64)


def approach_broadcast(scores: np.ndarray, actual: np.ndarray,
                       thresholds: np.ndarray) -> np.ndarray:
    predicted = scores[None, :] >= thresholds[:, None]  # (thresholds, n) booleans
    tp = np.count_nonzero(predicted & actual[None, :], axis=1)
    flagged = np.count_nonzero(predicted, axis=1)
    positives = np.count_nonzero(actual)
    return f1_from_counts(tp, flagged - tp, positives - tp)


def approach_pr_curve(scores: np.ndarray, actual: np.ndarray,
                      thresholds: np.ndarray) -> np.ndarray:
    from sklearn.metrics import precision_recall_curve
    precision, recall, cuts = precision_recall_curve(actual, scores, drop_intermediate=False)
    # cuts: the distinct scores, increasing; precision[i], recall[i] are those of
    # "score >= cuts[i]". Grid threshold t predicts the same set as the first distinct score
    # >= t; past the highest score nothing is predicted positive, which is the curve's last
    # point (precision 1, recall 0): F1 0, as 2tp / (2tp + fp + fn) gives.
    i = np.searchsorted(cuts, thresholds, side="left")
    return pr_f1(precision, recall)[i]


def pr_f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """F1 from precision and recall; 0 where both are 0 (no true positive)."""
    den = precision + recall
    return np.where(den > 0, 2 * precision * recall / np.where(den > 0, den, 1), 0.0)


def approach_sort_search(scores: np.ndarray, actual: np.ndarray,
                         thresholds: np.ndarray) -> np.ndarray:
    return g.metrics(g.from_scores(scores, actual, thresholds))["f1"]


def histograms(scores: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What ingest stores: one bincount of (label, score bin)."""
    counts = np.bincount(actual.astype(np.int64) * SCORE_BINS + score_bins(scores),
                         minlength=2 * SCORE_BINS)
    return counts[:SCORE_BINS], counts[SCORE_BINS:]


def approach_hist_search(neg: np.ndarray, pos: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return g.metrics(g.from_histograms(neg, pos, thresholds))["f1"]


def approach_hist_full(scores: np.ndarray, actual: np.ndarray,
                       thresholds: np.ndarray) -> np.ndarray:
    neg, pos = histograms(scores, actual)
    return approach_hist_search(neg, pos, thresholds)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    ok = ~np.isnan(a)
    return float(np.max(np.abs(a[ok] - b[ok]))) if ok.any() else 0.0


APPROACHES = (
    ("a", "sklearn f1_score x81"),
    ("b", "numpy broadcasting"),
    ("c", "precision_recall_curve"),
    ("d", "sort + searchsorted (from_scores)"),
    ("e", "bincount + from_histograms"),
    ("e'", "from_histograms only (no bincount)"),
)


def part_a(args: argparse.Namespace) -> dict[str, Any]:
    n = args.part_a_n
    thresholds = np.arange(10, 91) / 100.0  # 0.10 ... 0.90, each the double nearest the decimal
    rng = np.random.default_rng(args.seed)
    scores = rng.random(n)
    actual = rng.random(n) < scores
    out: dict[str, Any] = {"n": n, "thresholds": int(thresholds.size),
                           "threshold_range": [float(thresholds[0]), float(thresholds[-1])]}
    neg, pos = histograms(scores, actual)
    fns: dict[str, Callable[[], np.ndarray]] = {
        "a": lambda: approach_sklearn_loop(scores, actual, thresholds),
        "b": lambda: approach_broadcast(scores, actual, thresholds),
        "c": lambda: approach_pr_curve(scores, actual, thresholds),
        "d": lambda: approach_sort_search(scores, actual, thresholds),
        "e": lambda: approach_hist_full(scores, actual, thresholds),
        "e'": lambda: approach_hist_search(neg, pos, thresholds),
    }
    rows = {}
    with one_core() as core:
        out["one_core"] = core
        for key, name in APPROACHES:
            reps = min(3, args.part_a_reps) if key == "a" else args.part_a_reps
            log(f"Part A ({key}) {name}: up to {reps} repetitions, {args.part_a_budget:g}s budget")
            r = best_of(fns[key], reps, args.part_a_budget)
            rows[key] = {"name": name, "best_ms": r["best_s"] * 1e3, "reps": r["reps"],
                         "calls_per_rep": r["number"], "f1": r["result"]}
            log(f"  best {r['best_s'] * 1e3:.3f} ms ({r['reps']} x {r['number']})")
    reference = rows["b"]["f1"]  # direct counting at every threshold
    hist_ms = rows["e"]["best_ms"]
    for row in rows.values():
        row["max_abs_f1_diff_vs_b"] = max_abs_diff(row["f1"], reference)
        row["times_slower_than_e"] = row["best_ms"] / hist_ms
        row["times_slower_than_e_prime"] = row["best_ms"] / rows["e'"]["best_ms"]
    out["bincount_ms"] = rows["e"]["best_ms"] - rows["e'"]["best_ms"]
    out["best_f1"] = {"threshold": float(thresholds[int(np.nanargmax(reference))]),
                      "f1": float(np.nanmax(reference))}
    out["f1_agree_within_1e-9"] = all(r["max_abs_f1_diff_vs_b"] <= F1_TOLERANCE
                                      for r in rows.values())

    # Untimed check with ties: scores on the 0.001 lattice, many exactly on the thresholds.
    log(f"Part A check on {args.tie_n:,} lattice scores (ties, scores equal to thresholds)")
    m = args.tie_n
    lattice = rng.integers(0, 1001, m) / 1000.0
    lat_actual = rng.random(m) < lattice
    tie_ref = approach_broadcast(lattice, lat_actual, thresholds)
    tie = {"n": m, "scores_equal_to_a_threshold": int(np.isin(lattice, thresholds).sum())}
    for key, fn in (("a", approach_sklearn_loop), ("c", approach_pr_curve),
                    ("d", approach_sort_search), ("e", approach_hist_full)):
        tie[f"max_abs_f1_diff_{key}_vs_b"] = max_abs_diff(fn(lattice, lat_actual, thresholds),
                                                          tie_ref)
    # A pitfall the check guards against: precision_recall_curve read with side="right".
    from sklearn.metrics import precision_recall_curve
    p, r, cuts = precision_recall_curve(lat_actual, lattice, drop_intermediate=False)
    wrong = pr_f1(p, r)[np.searchsorted(cuts, thresholds, side="right")]
    tie["pr_curve_side_right_max_abs_diff"] = max_abs_diff(wrong, tie_ref)
    tie["agree_within_1e-9"] = all(v <= F1_TOLERANCE for k, v in tie.items()
                                   if k.startswith("max_abs"))
    out["tie_check"] = tie
    for row in rows.values():
        row.pop("f1")
    out["approaches"] = rows
    return out


# --------------------------------------------------------------------------- Part B
class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def net_output(r: redis.Redis) -> tuple[int, int]:
    s = r.info("stats")
    return int(s["total_net_output_bytes"]), int(s["total_net_input_bytes"])


def bytes_per_call(r: redis.Redis, fn: Callable[[], Any], calls: int = 5) -> dict[str, float]:
    """Bytes Redis sent (and received) per call of ``fn``: INFO deltas around ``calls`` calls,
    minus the delta of two back-to-back INFOs (the first INFO's own reply and request)."""
    a0, b0 = net_output(r)
    a1, b1 = net_output(r)
    info_out, info_in = a1 - a0, b1 - b0
    a2, b2 = net_output(r)
    for _ in range(calls):
        fn()
    a3, b3 = net_output(r)
    return {"out_bytes": (a3 - a2 - info_out) / calls, "in_bytes": (b3 - b2 - info_in) / calls}


def part_b(args: argparse.Namespace, url: str) -> dict[str, Any]:  # noqa: PLR0915 - Part B in order
    from mlops_tasks.ingest.pipeline import Ingestor
    from mlops_tasks.monitoring.targets import targets
    from mlops_tasks.registry import builtin_models
    from mlops_tasks.registry.config import TuningSpec
    from mlops_tasks.services import Services
    from mlops_tasks.settings import Settings
    from mlops_tasks.timebuckets import bucket_range, covering
    from mlops_tasks.tuning import engine

    settings = Settings.from_env({})  # defaults only: nothing from this shell's environment
    clock = FixedClock(float(int(time.time())))
    svc = Services.connect(settings, url, dispatch=lambda *_: None, clock=clock)
    for e in builtin_models(settings):
        svc.registry.register(e.name, e.version, e.config, actor="bench",
                              display_name=e.display_name, builtin=True)
    svc.registry.deploy(MODEL, "1.0.0", "production", actor="bench")
    ingestor = Ingestor(settings, svc.registry, svc.raw, clock=clock, cache_ttl_s=3600)
    target = targets(svc.registry, MODEL)[0]
    spec = TuningSpec.from_dict(target.config["tuning"])
    current = float(target.config["decision_threshold"])
    wide = dataclasses.replace(target, config={
        **target.config, "tuning": {**target.config["tuning"], "min": 0.1, "max": 0.9,
                                    "step": 0.01}})
    gran = covering(spec.window_s, settings.retention_days)
    starts = bucket_range(clock.now, spec.window_s, gran)
    out: dict[str, Any] = {
        "model": MODEL, "version": target.version, "current_threshold": current,
        "grid": [spec.min, spec.max, spec.step], "grid_points": len(spec.grid()),
        "metric": spec.metric, "window_s": spec.window_s, "granularity": gran.code,
        "buckets_read": len(starts), "batch_size": args.batch_size,
        "settings": {"tuning_min_samples": settings.tuning_min_samples,
                     "tuning_min_improvement": settings.tuning_min_improvement,
                     "tuning_require_significance": settings.tuning_require_significance},
        "sizes": []}

    rng = np.random.default_rng(args.seed + 1)
    contents = []
    for _ in range(4):  # distinct batch contents, reused with new ids and new timestamps
        s = rng.random(args.batch_size)
        a = (s >= 0.75) ^ (rng.random(args.batch_size) < 0.05)
        contents.append((s.tolist(), a.astype(int).tolist()))

    def fetch() -> list[Any]:
        """The bare Redis round trip of windows.time_window (same pipeline, no decoding)."""
        pipe = svc.raw.pipeline(transaction=False)
        for st in starts:
            pipe.hgetall(keys.agg(MODEL, target.version, gran.code, st))
            pipe.get(keys.hist(MODEL, target.version, gran.code, st))
        return pipe.execute()

    ingested, batches, ingest_s = 0, 0, 0.0
    ingest_deadline = time.monotonic() + args.ingest_timeout
    for size in args.sizes:
        log(f"Part B: ingesting up to {size:,} predictions in the window")
        t0 = time.perf_counter()
        stage_batches = 0
        while ingested < size:
            if time.monotonic() > ingest_deadline:
                break
            k = min(args.batch_size, size - ingested)
            scores, actual = contents[batches % len(contents)]
            ts = (clock.now - (spec.window_s - 1) * rng.random(k)).tolist()
            batches += 1
            stage_batches += 1
            r = ingestor.ingest_predictions({
                "v": 1, "kind": "predictions", "batch_id": f"bench-{batches}", "model": MODEL,
                "n": k, "score": scores[:k], "actual": actual[:k], "timestamp": ts})
            if not r["applied"] or r["labeled"] != k or r["dead_letters"]:
                raise RuntimeError(f"ingest of batch {batches} went wrong: {r}")
            ingested += k
            if stage_batches % 20 == 0:
                log(f"  {ingested:,} ingested")
        stage_s = time.perf_counter() - t0
        ingest_s += stage_s
        if ingested < size:
            log(f"  ingest timeout after {ingested:,}: stopping Part B here")
            out["incomplete"] = {"wanted": size, "ingested": ingested}
            break
        log(f"  {ingested:,} in the window ({stage_s:.1f}s for this step, "
            f"{stage_batches} batches); timing")

        run = engine.tune(svc, target, dry_run=True)
        if run["samples"] != size:
            raise RuntimeError(f"window holds {run['samples']} samples, expected {size}")
        bootstrap_ran = run["improvement_ci95"] is not None
        budget, runs = args.run_budget, args.runs
        row: dict[str, Any] = {
            "size": size, "ingest_s_this_step": stage_s,
            "ingest_events_per_s": (size - (out["sizes"][-1]["size"] if out["sizes"] else 0))
            / stage_s if stage_s else None,
            "samples": run["samples"], "reason": run["reason"],
            "best_threshold": run["best_threshold"], "current_score": run["current_score"],
            "best_score": run["best_score"], "improvement_percent": run["improvement_percent"],
            "improvement_ci95": run["improvement_ci95"], "bootstrap_ran": bootstrap_ran}
        row["tune"] = median_of(lambda: engine.tune(svc, target, dry_run=True), runs, budget)
        data = svc.windows.time_window(MODEL, target.version, spec.window_s)
        rows = data.rows()
        neg, pos = rows["tn"] + rows["fp"], rows["fn"] + rows["tp"]
        params = {"beta": spec.beta, "cost_fp": spec.cost_fp, "cost_fn": spec.cost_fn}
        best = run["best_threshold"]
        row["time_window"] = median_of(
            lambda: svc.windows.time_window(MODEL, target.version, spec.window_s), runs, budget)
        row["redis_pipeline"] = median_of(fetch, runs, budget)
        row["evaluate"] = median_of(functools.partial(engine.evaluate, neg, pos, spec, current),
                                    runs, budget)
        row["bootstrap"] = median_of(
            functools.partial(g.bootstrap_improvement, neg, pos, current, best, spec.metric,
                              **params),
            runs, budget)
        row["tune_81_thresholds"] = median_of(lambda: engine.tune(svc, wide, dry_run=True),
                                              runs, budget)
        row["run_tuning"] = median_of(
            lambda: engine.run_tuning(svc, MODEL, dry_run=True), runs, budget)
        replies = fetch()
        row["hist_bytes"] = sum(len(x) for x in replies[1::2] if x)
        row["hash_fields"] = sum(len(x) for x in replies[0::2])
        row["buckets_with_data"] = sum(1 for x in replies[1::2] if x)
        row["net"] = bytes_per_call(svc.raw, lambda: engine.tune(svc, target, dry_run=True))
        row["net_run_tuning"] = bytes_per_call(
            svc.raw, lambda: engine.run_tuning(svc, MODEL, dry_run=True))
        row["redis_used_memory"] = int(svc.raw.info("memory")["used_memory"])
        t = row["tune"]["median_ms"]
        parts = (row["time_window"]["median_ms"] + row["evaluate"]["median_ms"]
                 + row["bootstrap"]["median_ms"])
        row["other_ms"] = t - parts
        log(f"  tune median {t:.2f} ms (time_window {row['time_window']['median_ms']:.2f}, "
            f"evaluate {row['evaluate']['median_ms']:.2f}, bootstrap "
            f"{row['bootstrap']['median_ms']:.2f}); {row['net']['out_bytes']:,.0f} B from Redis")
        out["sizes"].append(row)
    out["ingested_total"] = ingested
    out["ingest_batches"] = batches
    out["ingest_s"] = ingest_s
    medians = [r["tune"]["median_ms"] for r in out["sizes"]]
    if medians:
        out["tune_median_ms_max"] = max(medians)
        out["tune_median_ms_spread"] = max(medians) / min(medians)
        out["under_target"] = max(medians) < TARGET_MS
    svc.redis.close()
    svc.raw.close()
    return out


# --------------------------------------------------------------------------- output
def machine_facts(redis_version: str | None) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import sklearn
    nproc = subprocess.run(["nproc"], capture_output=True, text=True,
                           env=_ORIGINAL_ENV, check=False).stdout.strip()
    return {"nproc": int(nproc) if nproc.isdigit() else None, "cpu_count": os.cpu_count(),
            "cpu": cpu, "python": platform.python_version(), "numpy": np.__version__,
            "sklearn": sklearn.__version__, "redis_server": redis_version,
            "platform": platform.platform()}


def print_part_a(a: dict[str, Any]) -> None:
    lo, hi = a["threshold_range"]
    print(f"\nPart A: grid search over {a['n']:,} raw labeled predictions, "
          f"{a['thresholds']} thresholds {lo:.2f}..{hi:.2f}, one core (best of repetitions)")
    print(f"{'':3} {'approach':38} {'best ms':>11} {'reps x calls':>13} {'vs (e)':>9} "
          f"{'vs (e)':>9} {'max |dF1|':>10}")
    print(f"{'':3} {'':38} {'':>11} {'':>13} {'incl bc':>9} {'excl bc':>9} {'vs (b)':>10}")
    for key, row in a["approaches"].items():
        print(f"{key:3} {row['name']:38} {row['best_ms']:11.3f} "
              f"{row['reps']:>5} x {row['calls_per_rep']:<5} {row['times_slower_than_e']:8.1f}x "
              f"{row['times_slower_than_e_prime']:8.0f}x {row['max_abs_f1_diff_vs_b']:10.1e}")
    tie = a["tie_check"]
    print(f"bincount part of (e): {a['bincount_ms']:.3f} ms; best F1 {a['best_f1']['f1']:.4f} at "
          f"{a['best_f1']['threshold']:.2f}; all F1 agree within 1e-9: "
          f"{a['f1_agree_within_1e-9']}")
    print(f"tie check ({tie['n']:,} lattice scores, {tie['scores_equal_to_a_threshold']:,} equal "
          f"to a threshold): agree within 1e-9: {tie['agree_within_1e-9']} "
          f"(max diffs a {tie['max_abs_f1_diff_a_vs_b']:.1e}, c {tie['max_abs_f1_diff_c_vs_b']:.1e}"
          f", d {tie['max_abs_f1_diff_d_vs_b']:.1e}, e {tie['max_abs_f1_diff_e_vs_b']:.1e}); "
          f"precision_recall_curve read with side='right' would be off by "
          f"{tie['pr_curve_side_right_max_abs_diff']:.3f}")


def print_part_b(b: dict[str, Any]) -> None:
    print(f"\nPart B: tune({b['model']}, dry_run=True), window {b['window_s']} s = "
          f"{b['buckets_read']} '{b['granularity']}' buckets, grid {b['grid'][0]}..{b['grid'][1]} "
          f"step {b['grid'][2]} ({b['grid_points']} points), metric {b['metric']}; "
          f"median (p90) of runs, ms")
    head = (f"{'window':>11} {'tune':>14} {'time_window':>11} {'(redis)':>8} {'evaluate':>9} "
            f"{'bootstrap':>9} {'other':>6} {'tune 81pt':>9} {'run_tuning':>10} "
            f"{'B out/run':>10} {'B in/run':>8} {'reason':>8} {'ingest ev/s':>11}")
    print(head)
    for r in b["sizes"]:
        print(f"{r['size']:>11,} {r['tune']['median_ms']:7.2f} ({r['tune']['p90_ms']:5.2f}) "
              f"{r['time_window']['median_ms']:11.2f} {r['redis_pipeline']['median_ms']:8.2f} "
              f"{r['evaluate']['median_ms']:9.2f} {r['bootstrap']['median_ms']:9.2f} "
              f"{r['other_ms']:6.2f} {r['tune_81_thresholds']['median_ms']:9.2f} "
              f"{r['run_tuning']['median_ms']:10.2f} {r['net']['out_bytes']:10,.0f} "
              f"{r['net']['in_bytes']:8,.0f} {r['reason']:>8} "
              f"{r['ingest_events_per_s'] or 0:11,.0f}")
    if b["sizes"]:
        last = b["sizes"][-1]
        print(f"best threshold {last['best_threshold']} (current {b['current_threshold']}), "
              f"improvement {last['improvement_percent']:.1f}%, bootstrap ran at every size: "
              f"{all(r['bootstrap_ran'] for r in b['sizes'])}; hist bytes in the window "
              f"{last['hist_bytes']:,} in {last['buckets_with_data']} buckets")
        print(f"target < {TARGET_MS:g} ms: max median {b['tune_median_ms_max']:.2f} ms "
              f"({'met' if b['under_target'] else 'NOT met'}); largest/smallest median "
              f"{b['tune_median_ms_spread']:.2f}x")
    if "incomplete" in b:
        print(f"INCOMPLETE: {b['incomplete']}")


def main() -> int:
    args = parse_args()
    command = reproduce_command()
    log(f"reproduce with: {command}")
    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-tuning-"))
    server = PrivateRedis(tmp)
    results: dict[str, Any] = {"benchmark": "tuning", "command": command,
                               "quick": args.quick, "seed": args.seed}
    started = time.perf_counter()
    results["loadavg_start"] = os.getloadavg()
    try:
        need_redis = args.skip != "b"
        if need_redis:
            server.start()
        results["machine"] = machine_facts(server.version())
        if args.skip != "a":
            results["part_a"] = part_a(args)
        if need_redis:
            results["part_b"] = part_b(args, server.url)
    finally:
        server.stop()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results["elapsed_s"] = time.perf_counter() - started
    results["loadavg_end"] = os.getloadavg()
    m = results["machine"]
    print(f"machine: nproc {m['nproc']}, {m['cpu']}, Python {m['python']}, numpy {m['numpy']}, "
          f"scikit-learn {m['sklearn']}, redis-server {m['redis_server']}")
    if "part_a" in results:
        print_part_a(results["part_a"])
    if "part_b" in results:
        print_part_b(results["part_b"])
    print(f"\nelapsed {results['elapsed_s']:.0f} s; load average (1/5/15 min) at start "
          f"{'/'.join(f'{x:.2f}' for x in results['loadavg_start'])}, at end "
          f"{'/'.join(f'{x:.2f}' for x in results['loadavg_end'])} (other processes on the "
          f"machine disturb the figures). Reproduce: {command}")
    print("Quick variant (Part B up to 1M): cd "
          f"{shlex.quote(str(ROOT))} && .venv/bin/python bench/tuning.py --quick")
    print(json.dumps(results, default=lambda x: x.item() if hasattr(x, "item") else str(x)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
