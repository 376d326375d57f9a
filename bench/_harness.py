"""Shared helpers of the benchmarks: a private redis-server, worker subprocesses, polling,
cleanup and result printing.

Everything a benchmark starts lives in one temporary folder and is stopped by ``Bench.close()``
(also on Ctrl-C, SIGTERM or an exception: use ``with Bench(...) as b:``). Children are started
in their own session (so a Ctrl-C reaches only the benchmark, which then stops them in order)
and with a parent-death signal, so even a SIGKILLed benchmark leaves nothing running.

Nothing here touches the operator's own Redis or data folder: the children's environment is
scrubbed of every project setting, REDIS_URL points at the private server and MLOPS_DATA_DIR at
the temporary folder. A RabbitMQ broker is a private virtual host of the machine's RabbitMQ
(``Bench.rabbitmq_vhost``), deleted at the end like the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import redis

from mlops_tasks.embedded import find_server_binary
from mlops_tasks.settings import ENV_PREFIX, known_variables

BENCH_DIR = Path(__file__).resolve().parent
BUILTIN_MODELS = ("n1-detector", "waf-behavioral", "queue-anomaly")
HOST = "127.0.0.1"
RABBITMQ = (HOST, 5672)  # the machine's RabbitMQ, guest/guest, managed with rabbitmqctl


def log(msg: str) -> None:
    """Progress goes to stderr; stdout holds only the results table and the JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# Children are exec'd through this launcher, which asks the kernel to SIGTERM them when the
# benchmark dies (PR_SET_PDEATHSIG survives exec). No preexec_fn: the benchmark has threads.
_LAUNCHER = ("import ctypes, os, signal, sys\n"
             "try:\n"
             "    ctypes.CDLL('libc.so.6').prctl(1, signal.SIGTERM)\n"
             "except OSError:\n"
             "    pass\n"
             "if os.getppid() != int(sys.argv[1]):\n"
             "    sys.exit(1)\n"
             "os.execvp(sys.argv[2], sys.argv[2:])\n")


def _launch(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *args]


def clean_env(redis_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of the benchmark's children (and of its own clients)."""
    env = {k: v for k, v in os.environ.items()
           if k not in known_variables() and not k.startswith(ENV_PREFIX)}
    env.update({"REDIS_URL": redis_url, "MLOPS_LOG_LEVEL": "warning",
                "MLOPS_DATA_DIR": str(tmp / "mlops-data"), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def machine_facts() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    facts: dict[str, Any] = {"nproc": os.cpu_count(), "cpu": cpu,
                             "python": platform.python_version(), "platform": platform.platform()}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([find_server_binary(), "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
        facts["redis"] = next((p.split("=", 1)[1] for p in out.split() if p.startswith("v=")), out)
    return facts


# --------------------------------------------------------------------------- processes
class Proc:
    """A child process in its own session; stopped with ``sig``, then SIGKILL of its group."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")  # closed in stop()
        self.proc = subprocess.Popen(_launch(args), env=env, cwd=cwd,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}; "
                               f"last log lines:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.proc.pid}) did not stop in {timeout:g}s: SIGKILL")
        # The process group is this child's own session (start_new_session): its pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()


class RedisServer(Proc):
    def __init__(self, tmp: Path, env: dict[str, str], *, extra_args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.dir = tmp / f"redis-{self.port}"
        self.dir.mkdir(parents=True)
        args = [find_server_binary(), "--port", str(self.port), "--bind", HOST,
                "--dir", str(self.dir), "--save", "", "--appendonly", "no",
                "--protected-mode", "yes", *extra_args]
        super().__init__(f"redis-server:{self.port}", args, env, self.dir / "redis.log")
        self.url = f"redis://{HOST}:{self.port}/0"
        deadline = time.monotonic() + 15
        while True:
            self.check_alive()
            try:
                if self.client().ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer in 15s")
            time.sleep(0.02)

    def client(self, decode: bool = True) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, decode_responses=decode,
                           socket_connect_timeout=5, socket_timeout=60)


# --------------------------------------------------------------------------- the session
class Bench:
    """Owns the temporary folder and every process a benchmark starts."""

    def __init__(self, name: str, keep_tmp: bool = False) -> None:
        self.name = name
        self.keep_tmp = keep_tmp
        self.tmp = Path(tempfile.mkdtemp(prefix=f"mlops-bench-{name}-"))
        self._procs: list[Proc] = []
        self._vhosts: list[str] = []
        self._prev_term = None

    def __enter__(self) -> Self:
        def on_term(signum: int, _frame: Any) -> None:
            raise SystemExit(128 + signum)
        self._prev_term = signal.signal(signal.SIGTERM, on_term)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self._prev_term is not None:
            signal.signal(signal.SIGTERM, self._prev_term)

    def close(self) -> None:
        # Ctrl-C during cleanup must not leave children behind: ignore it until done.
        prev_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for p in reversed(self._procs):  # workers first, Redis last
                try:
                    p.stop()
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    log(f"stopping {p.name}: {exc}")
            self._procs.clear()
            for vhost in self._vhosts:  # after the workers that used them
                try:
                    _rabbitmqctl("delete_vhost", vhost, check=True)
                    log(f"RabbitMQ vhost {vhost} deleted")
                except (OSError, subprocess.SubprocessError) as exc:
                    log(f"deleting RabbitMQ vhost {vhost}: {exc}")
            self._vhosts.clear()
            if not self.keep_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                log(f"kept {self.tmp}")
        finally:
            signal.signal(signal.SIGINT, prev_int)

    # ---------------------------------------------------------------- Redis
    def start_redis(self, extra_args: Sequence[str] = ()) -> RedisServer:
        env = clean_env("redis://unused", self.tmp)
        server = RedisServer(self.tmp, env, extra_args=extra_args)
        self._procs.append(server)
        log(f"redis-server pid {server.pid} on {server.url}")
        return server

    def use_redis(self, server: RedisServer) -> dict[str, str]:
        """Point this process's own settings at the private server (never the embedded one)
        and return the environment for children."""
        env = clean_env(server.url, self.tmp)
        for k in list(os.environ):
            if k in known_variables() or k.startswith(ENV_PREFIX):
                del os.environ[k]
        os.environ.update({k: env[k] for k in ("REDIS_URL", "MLOPS_LOG_LEVEL", "MLOPS_DATA_DIR")})
        return env

    # ---------------------------------------------------------------- RabbitMQ
    def rabbitmq_vhost(self) -> str:
        """A fresh virtual host of the machine's RabbitMQ for guest, deleted by ``close()``;
        its amqp:// URL. RuntimeError (with the reason) when there is no usable RabbitMQ."""
        reason = rabbitmq_missing()
        if reason:
            raise RuntimeError(reason)
        vhost = f"mlops-bench-{uuid.uuid4().hex[:8]}"
        _rabbitmqctl("add_vhost", vhost, check=True)
        self._vhosts.append(vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*", check=True)
        log(f"RabbitMQ vhost {vhost} created")
        return f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{vhost}"

    # ---------------------------------------------------------------- workers
    def start_mlops_worker(self, server: RedisServer, concurrency: int,
                           queues: str = "mlops.events",
                           broker_url: str | None = None) -> WorkerProc:
        """``mlops worker`` (the project's Celery app) consuming ``queues``; the broker is the
        store's Redis unless ``broker_url`` names another (``CELERY_BROKER_URL``)."""
        env = clean_env(server.url, self.tmp,
                        **({"CELERY_BROKER_URL": broker_url} if broker_url else {}))
        tag = f"mlops{len(self._procs)}-{os.getpid()}"
        args = [sys.executable, "-m", "mlops_tasks.cli.main", "worker",
                "--concurrency", str(concurrency), "--queues", queues, "--loglevel", "warning",
                f"--hostname={tag}@%h"]
        w = WorkerProc(f"mlops worker -c {concurrency}", args, env, self.tmp / f"{tag}.log")
        self._procs.append(w)
        broker = "" if broker_url is None else f", broker {broker_url.partition('://')[0]}"
        log(f"mlops worker pid {w.pid} (concurrency {concurrency}, queues {queues}{broker})")
        return w

    def start_celery_worker(self, server: RedisServer, app_module: str, concurrency: int,
                            queues: str, task_events: bool = True) -> WorkerProc:
        """A plain ``celery worker`` for an app module living in bench/."""
        env = clean_env(server.url, self.tmp,
                        PYTHONPATH=os.pathsep.join([str(BENCH_DIR),
                                                    os.environ.get("PYTHONPATH", "")]).rstrip(
                            os.pathsep))
        tag = f"celery{len(self._procs)}-{os.getpid()}"
        args = [sys.executable, "-m", "celery", "-A", app_module, "worker",
                "--concurrency", str(concurrency), "--queues", queues, "--loglevel", "WARNING",
                f"--hostname={tag}@%h"]
        if task_events:  # as `mlops worker` does
            args.append("--task-events")
        else:
            env["BENCH_NO_TASK_EVENTS"] = "1"
        w = WorkerProc(f"celery worker {app_module} -c {concurrency}", args, env,
                       self.tmp / f"{tag}.log", cwd=BENCH_DIR)
        self._procs.append(w)
        log(f"celery worker pid {w.pid} ({app_module}, concurrency {concurrency})")
        return w

    def start_serve(self, env: dict[str, str]) -> Callable[[str], bytes]:
        """`mlops serve` on a free port, stopped with the bench; returns a GET of a path that
        answers the body (once /health/live answers)."""
        port = free_port()
        serve = Proc("mlops serve", [sys.executable, "-m", "mlops_tasks.cli.main", "serve",
                                     "--port", str(port)], env, self.tmp / "serve.log")
        self._procs.append(serve)
        url = f"http://127.0.0.1:{port}"

        def get(path: str) -> bytes:
            with urllib.request.urlopen(url + path, timeout=30) as resp:  # noqa: S310 - local
                body: bytes = resp.read()
                return body

        def up() -> bool:
            serve.check_alive()
            try:
                return get("/health/live") != b""
            except OSError:
                return False

        wait_until("mlops serve answers", up, bool, timeout=60)
        return get

    def stop(self, p: Proc) -> None:
        if p in self._procs:
            p.stop()
            self._procs.remove(p)


class WorkerProc(Proc):
    """A Celery worker: SIGTERM is a warm shutdown (running tasks finish), then SIGKILL."""


# --------------------------------------------------------------------------- RabbitMQ
def _rabbitmqctl(*args: str, check: bool = False) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=60, check=check)


def rabbitmq_missing() -> str | None:
    """Why the machine's RabbitMQ cannot be used for a private virtual host, or None."""
    try:
        with socket.create_connection(RABBITMQ, timeout=2):
            pass
    except OSError:
        return f"no RabbitMQ listens on {RABBITMQ[0]}:{RABBITMQ[1]}"
    if not shutil.which("rabbitmqctl"):
        return "rabbitmqctl is not on PATH: no private virtual host can be made"
    try:
        probe = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True,
                               text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"rabbitmqctl failed: {exc}"
    if probe.returncode != 0:
        return f"rabbitmqctl cannot manage this RabbitMQ: {probe.stderr.strip()[:200]}"
    return None


def rabbitmq_pid() -> int | None:
    """The pid of the local RabbitMQ's Erlang VM (``beam.smp`` running rabbit), to read its CPU
    time; None when there is none or it is not readable."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "beam.smp":
                continue
            if b"rabbit" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


# --------------------------------------------------------------------------- waiting
def wait_until(what: str, probe: Callable[[], Any], done: Callable[[Any], bool], *,
               timeout: float, interval: float = 0.01,
               alive: Sequence[Proc] = (), progress_every: float = 5.0) -> tuple[Any, float]:
    """Poll ``probe()`` until ``done(value)``; return (value, monotonic time it was seen).
    Raises TimeoutError after ``timeout`` seconds, RuntimeError if a watched process died."""
    start = time.monotonic()
    deadline = start + timeout
    next_report = start + progress_every
    while True:
        value = probe()
        now = time.monotonic()
        if done(value):
            return value, now
        if now > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout:g}s (last value {value!r})")
        if now > next_report:
            log(f"  waiting for {what}: {value!r}")
            next_report = now + progress_every
            for p in alive:
                p.check_alive()
        time.sleep(interval)


def wait_models_registered(r: redis.Redis, worker: Proc, models: Sequence[str] = BUILTIN_MODELS,
                           timeout: float = 60.0) -> None:
    """The worker registers the built-in models when it is ready (``worker_ready``)."""
    def probe() -> set[str]:
        worker.check_alive()
        return set(r.smembers("mlops:models"))
    wait_until("models registered by the worker", probe, lambda s: set(models) <= s,
               timeout=timeout, interval=0.05, alive=[worker])


def total_key(model: str, version: str = "1.0.0") -> str:
    return f"mlops:{{{model}}}:total:{version}"


def totals(r: redis.Redis, model: str, version: str = "1.0.0") -> tuple[int, int]:
    """(predictions, labeled) counted since deployment by the Ingestor."""
    n, labeled = r.hmget(total_key(model, version), "n", "labeled")
    return int(n or 0), int(labeled or 0)


def queue_length(r: redis.Redis, queue: str = "mlops.events") -> int:
    return int(r.llen(queue))


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, living and reaped, from
    /proc (0.0 where it is not readable)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo, first = [pid], True
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            children = [int(c) for task in Path(f"/proc/{p}/task").iterdir()
                        for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        # utime, stime (fields 14, 15); the root also counts its reaped children (16, 17)
        total += (int(fields[11]) + int(fields[12]) +
                  ((int(fields[13]) + int(fields[14])) if first else 0)) / tick
        first = False
        todo.extend(children)
    return total


def redis_cpu_s(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def performance_summary(env: dict[str, str], timeout: float = 60.0) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", "performance-summary",
                          "--json"], env=env, capture_output=True, text=True, timeout=timeout,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"mlops performance-summary failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


# --------------------------------------------------------------------------- output
def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for j, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        if x >= 100:
            return f"{x:,.0f}"
        return f"{x:.3g}" if x < 10 else f"{x:.1f}"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return "-" if x is None else str(x)


def print_json(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, sort_keys=True, default=str), flush=True)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    log(f"--- {name}")
    t0 = time.monotonic()
    yield
    log(f"--- {name}: done in {time.monotonic() - t0:.1f}s")


def run_main(main: Callable[[], int | None]) -> None:
    """Run a benchmark's main(); Ctrl-C ends it with 130 after its cleanup ran."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        sys.exit(130)


def timed_calls(fn: Any, n: int) -> tuple[list[float], int]:
    """Seconds of each of ``n`` calls of ``fn`` after one warm-up call, and the size of what
    the warm-up returned (a page, a scrape)."""
    size = len(fn())
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out, size


def latency_summary(xs: list[float]) -> dict[str, float]:
    """Median, p90 and max of call times, in milliseconds."""
    ordered = sorted(xs)
    return {"median_ms": statistics.median(xs) * 1e3,
            "p90_ms": ordered[min(len(xs) - 1, int(0.9 * len(xs)))] * 1e3,
            "max_ms": ordered[-1] * 1e3}


def report_latencies(kinds: dict[str, tuple[list[float], int]], what: str,
                     target_ms: float) -> dict[str, dict[str, float]]:
    """Print a table of call times against ``target_ms`` (p90), one row per kind (times, bytes
    answered); return the summaries for the JSON document."""
    rows = []
    out = {}
    for name, (xs, size) in kinds.items():
        s = latency_summary(xs)
        verdict = "PASS" if s["p90_ms"] < target_ms else "ABOVE"
        rows.append([name, s["median_ms"], s["p90_ms"], s["max_ms"], size,
                     f"< {target_ms:g} ms", verdict])
        out[name] = {**s, "bytes": size}
    print()
    print_table([what, "median ms", "p90 ms", "max ms", "bytes", "target", ""], rows)
    return out
