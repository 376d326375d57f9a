"""`mlops up`: the whole stack on one machine, supervised by one process.

The children, each an `mlops` command in a session (and so a process group) of its own:

    worker-<pool>   `mlops worker --pool <pool>`, one per dedicated pool (events, monitoring,
                    tuning); its prefork children are in its group
    beat            `mlops beat`
    flower          `mlops flower`, with MLOPS_FLOWER_BASIC_AUTH in its environment only
                    (generated with ``secrets`` unless the operator set it)
    serve           `mlops serve`

Every child gets the same ``REDIS_URL`` by environment: the operator's, else the embedded
Redis, started here when it was not running (and then shut down here at the end, after the
children; one that was already running is left as it was). With ``MLOPS_REDIS_ACL`` on, the
children get the embedded Redis's ``MLOPS_DATA_DIR`` instead, and each logs in as its own role.
Each child's stdout and stderr go to ``<MLOPS_LOG_DIR>/up/<child>.log`` (0600; the previous
run's file is kept as ``.log.1``).

Ready means: serve's ``/health/ready`` answers 200, Flower answers HTTP, and a worker of every
pool answered the Celery remote control once. A child that exits before it is asked to, or a
stack not ready within the timeout, stops the whole stack: never half a stack.

Stopping (the first SIGINT, SIGTERM or SIGHUP): SIGTERM to each child's main process, so a
Celery worker makes its warm shutdown and stops its own pool children (a SIGTERM sent straight to
a prefork child kills it mid-task: billiard resets SIGTERM there); then, once the main process
has exited or the timeout passed, SIGTERM to whatever is left of its process group and SIGKILL
after a short grace. A second SIGINT or SIGTERM skips the waiting. Each child also gets SIGTERM
from the kernel if this process dies without stopping them (Linux: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from .connection import connect, embedded_acl_file, embedded_redis, resolve_broker_url
from .embedded import EmbeddedRedis
from .errors import ConfigError, MlopsError, ValidationError
from .health import ActiveQueues, bounded, queue_depths, worker_liveness
from .health.queues import broker_for
from .roles import OPERATOR
from .settings import Settings, mask_url

FLOWER_USER = "mlops"
READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 30.0  # for a main process to stop after SIGTERM (Celery's warm shutdown)
STRAY_GRACE_S = 5.0  # for what is left of a group after SIGTERM, before SIGKILL
PROBE_TIMEOUT_S = 2.0  # an HTTP check, a worker question, a status read
TICK_S = 0.1  # how often the loop looks at signals and children
LOG_TAIL_LINES = 20
WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - mapped away


# --- what to start ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    serve_port: int = 9808
    flower_port: int = 5555
    concurrency: int | None = None  # processes per worker pool; None: the pool's default

    def validate(self) -> None:
        """Raise ValidationError naming the option: an unknown host, equal or busy ports."""
        try:
            socket.getaddrinfo(self.host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ValidationError(f"--host {self.host!r}: cannot resolve it ({exc})") from exc
        if self.serve_port == self.flower_port:
            raise ValidationError(f"--flower-port {self.flower_port}: the same as --serve-port; "
                                  "choose two different ports")
        for option, port in (("--serve-port", self.serve_port),
                             ("--flower-port", self.flower_port)):
            problem = _bind_problem(self.host, port)
            if problem:
                raise ValidationError(f"{option} {port}: cannot listen on "
                                      f"{self.host}:{port} ({problem})")

    def url(self, port: int) -> str:
        host = WILDCARD.get(self.host, self.host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _bind_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port now, or None."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            sock.bind(address)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


@dataclass(frozen=True)
class FlowerCredentials:
    user: str
    password: str | None = field(repr=False)  # None when the operator set them (not echoed)
    source: str  # "generated" or "MLOPS_FLOWER_BASIC_AUTH"
    setting: str = field(repr=False)  # the value of MLOPS_FLOWER_BASIC_AUTH for Flower


def flower_credentials(settings: Settings) -> FlowerCredentials:
    """The operator's MLOPS_FLOWER_BASIC_AUTH, else a user and a fresh random password."""
    if settings.flower_basic_auth:
        user = settings.flower_basic_auth.split(",")[0].split(":", 1)[0]
        return FlowerCredentials(user, None, "MLOPS_FLOWER_BASIC_AUTH",
                                 settings.flower_basic_auth)
    password = secrets.token_urlsafe(18)  # no ":" nor ",": the setting's separators
    return FlowerCredentials(FLOWER_USER, password, "generated", f"{FLOWER_USER}:{password}")


@dataclass(frozen=True)
class ChildSpec:
    name: str
    args: tuple[str, ...]  # the `mlops` command line, without `mlops`
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    url: str | None = None


def child_specs(options: StackOptions, pools: Sequence[str],
                credentials: FlowerCredentials) -> list[ChildSpec]:
    """The children of the stack (pure)."""
    per_pool = ("--concurrency", str(options.concurrency)) if options.concurrency else ()
    specs = [ChildSpec(f"worker-{pool}", ("worker", "--pool", pool, *per_pool))
             for pool in pools]
    specs.append(ChildSpec("beat", ("beat",)))
    specs.append(ChildSpec("flower", ("flower", "--address", options.host,
                                      "--port", str(options.flower_port)),
                           env={"MLOPS_FLOWER_BASIC_AUTH": credentials.setting},
                           url=options.url(options.flower_port) + "/"))
    specs.append(ChildSpec("serve", ("serve", "--host", options.host,
                                     "--port", str(options.serve_port)),
                           url=options.url(options.serve_port) + "/health"))
    return specs


# --- Redis ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackRedis:
    url: str = field(repr=False)  # may hold a password: shown through mask_url only
    embedded: EmbeddedRedis | None  # None: the operator's REDIS_URL
    started_here: bool  # the embedded Redis was started by this stack (and is stopped by it)
    pid: int | None

    def to_dict(self) -> dict[str, Any]:
        shown = self.embedded.url if self.embedded is not None else mask_url(self.url)
        return {"url": shown, "embedded": self.embedded is not None,
                "started_here": self.started_here, "pid": self.pid}

    def child_env(self) -> dict[str, str]:
        """How a child finds this Redis: its URL, or with ACLs the embedded Redis's folder (each
        child logs in with its own role, never with the operator's URL)."""
        if self.embedded is not None and self.embedded.login is not None:
            return {"MLOPS_DATA_DIR": str(self.embedded.data_dir)}
        return {"REDIS_URL": self.url}


def stack_redis(settings: Settings) -> StackRedis:
    """``REDIS_URL``, else the embedded Redis, started when it is not running."""
    if settings.redis_url:
        return StackRedis(settings.redis_url, None, started_here=False, pid=None)
    embedded = embedded_redis(settings, OPERATOR)
    running = embedded.is_running()
    url = embedded.ensure_running(acl_file=embedded_acl_file(settings))
    return StackRedis(url, embedded, started_here=not running, pid=embedded.pid())


# --- the children -----------------------------------------------------------------------------


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:  # also its process group
        return self.proc.pid

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.spec.name, "pid": self.pid, "url": self.spec.url,
                "log": str(self.log_path)}


def spawn(spec: ChildSpec, env: Mapping[str, str], log_dir: Path) -> Child:
    """Start `mlops <args>` in a new session, its output in ``<log_dir>/<name>.log``."""
    path = log_dir / f"{spec.name}.log"
    with contextlib.suppress(FileNotFoundError):
        path.replace(path.with_name(path.name + ".1"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write the log of {spec.name} at {path}: "
                          f"{exc.strerror}") from exc
    with os.fdopen(fd, "wb") as log:  # the child keeps its own copy
        proc = subprocess.Popen(  # noqa: S603 - this interpreter and our own command, no shell
            [sys.executable, "-m", "mlops_tasks.cli.main", *spec.args],
            env={**env, **spec.env}, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent())  # noqa: PLW1509 - one prctl, made before any thread
    return Child(spec, proc, path)


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a function for the child (between fork and exec) that asks the kernel for a
    SIGTERM when this process dies: no orphans even after a SIGKILL here."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded here, not in the child
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def arm() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request was made
            os.kill(os.getpid(), signal.SIGTERM)
    return arm


def live_groups(pgids: Sequence[int]) -> dict[int, list[int]]:
    """Process group -> its processes still running (zombies excluded), for the groups that
    have any. Linux reads /proc; elsewhere a group counts as live while killpg(pgid, 0) works."""
    wanted = set(pgids)
    out: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        for pgid in wanted:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            out[pgid] = [pgid]
        return out
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        state, pgrp = fields[0], int(fields[2])
        if pgrp in wanted and state not in {"Z", "X"}:
            out.setdefault(pgrp, []).append(int(entry.name))
    return out


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop_children(children: Sequence[Child], forced: Callable[[], bool],
                  timeout_s: float = STOP_TIMEOUT_S) -> list[str]:
    """Stop every child and its process group (see the module's docstring); return the names
    of those that had to be killed."""
    for c in children:
        if c.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(c.pid, signal.SIGTERM)
    _wait_until(lambda: all(c.proc.poll() is not None for c in children),
                time.monotonic() + timeout_s, forced)
    groups = [c.pid for c in children]
    stragglers = live_groups(groups)
    for pgid in stragglers:
        _signal_group(pgid, signal.SIGTERM)
    if stragglers:
        _wait_until(lambda: not live_groups(groups), time.monotonic() + STRAY_GRACE_S, forced)
    left = live_groups(groups)
    for pgid in left:
        _signal_group(pgid, signal.SIGKILL)
    killed = [c.spec.name for c in children if c.pid in left]
    for c in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(STRAY_GRACE_S)
    _wait_until(lambda: not live_groups(groups), time.monotonic() + STRAY_GRACE_S, lambda: False)
    return killed


def _wait_until(done: Callable[[], bool], deadline: float, forced: Callable[[], bool]) -> None:
    while not done() and not forced() and time.monotonic() < deadline:
        time.sleep(TICK_S)


def log_tail(path: Path, secrets_: Sequence[str], lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines of a child's log, with any of ``secrets_`` masked."""
    try:
        text = path.read_bytes()[-16384:].decode(errors="replace")
    except OSError:
        return []
    for secret in secrets_:
        text = text.replace(secret, "***")
    return text.splitlines()[-lines:]


# --- readiness and status ---------------------------------------------------------------------


def http_status(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> int | None:
    """The HTTP status ``url`` answers with, None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - http:// we built
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class StackStatus:
    events_per_s: float | None  # predictions ingested per second since the last sample
    queued: int  # messages waiting in the queues
    unacked: int | None  # messages taken by a worker and not yet acknowledged (None: unknown)
    alerts_firing: int
    error: str | None = None  # why Redis could not be read (the numbers are then 0)

    def to_dict(self) -> dict[str, Any]:
        return {"events_per_s": self.events_per_s, "queued": self.queued,
                "unacked": self.unacked, "alerts_firing": self.alerts_firing,
                "error": self.error}


def events_rate(previous: tuple[float, float] | None, now: float, total: float) -> float | None:
    """Events per second between two (time, running total) samples (pure). A total that went
    down (a new version deployed starts its own count) reads as no events."""
    if previous is None or now <= previous[0]:
        return None
    return max(0.0, total - previous[1]) / (now - previous[0])


class StatusReader:
    """The status line's numbers, from Redis, with the collector's and health's readers."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.raw = connect(redis_url, decode=False, fail_fast=True)
        broker_url = resolve_broker_url(settings.replace(redis_url=redis_url), start=False,
                                        role=OPERATOR)
        self.broker = broker_for(broker_url, fail_fast=True)
        self.previous: tuple[float, float] | None = None

    def read(self) -> StackStatus:
        try:
            total, alerts, queued, unacked = bounded(self._counts, PROBE_TIMEOUT_S, "Redis")
        except Exception as exc:  # noqa: BLE001 - a status line reports, it never stops the stack
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return StackStatus(None, 0, 0, 0, error=reason)
        now = time.monotonic()
        rate = events_rate(self.previous, now, total)
        self.previous = (now, total)
        return StackStatus(rate, queued, unacked, alerts)

    def _counts(self) -> tuple[float, int, int, int | None]:
        from .server.metrics import read_models  # noqa: PLC0415 - numpy, once the stack runs

        models = read_models(self.raw, self.settings, time.time())
        total = sum(m.totals.get("n", 0.0) for m in models)
        alerts = sum(sum(m.alerts.values()) for m in models)
        if self.broker is None:
            return total, alerts, 0, 0
        depths = queue_depths(self.broker)
        return total, alerts, depths.total_waiting, depths.unacked


# --- running it -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackInfo:
    """What `mlops up` prints at start."""

    redis: StackRedis
    serve_url: str
    flower_url: str
    credentials: FlowerCredentials
    children: tuple[Child, ...]
    log_dir: Path

    def to_dict(self) -> dict[str, Any]:
        c = self.credentials
        return {"redis": self.redis.to_dict(),
                "serve": {"url": self.serve_url, "health": f"{self.serve_url}/health",
                          "ready": f"{self.serve_url}/health/ready",
                          "metrics": f"{self.serve_url}/metrics"},
                "flower": {"url": self.flower_url, "user": c.user, "password": c.password,
                           "credentials_from": c.source},
                "children": [child.to_dict() for child in self.children],
                "log_dir": str(self.log_dir)}


@dataclass(frozen=True)
class StackExit:
    """How the stack ended: on a signal, or a failure (a child died, never ready)."""

    signal_name: str | None
    failure: str | None
    log_tail: tuple[str, ...]  # of the child that died
    killed: tuple[str, ...]  # children that needed SIGKILL


class StackView(Protocol):
    """How a caller presents the stack; every method is called from the main thread."""

    def started(self, info: StackInfo) -> None: ...
    def ready(self, after_s: float) -> None: ...
    def status(self, status: StackStatus) -> None: ...
    def stopping(self, signal_name: str | None) -> None: ...


class StopRequest:
    """Set by a signal: the first asks for a stop, a second SIGINT or SIGTERM forces it. Plain
    attributes, polled every TICK_S: a handler must not take locks (threading.Event would)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.forced = False

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal_name is not None and signum != signal.SIGHUP:
            self.forced = True
        self.signal_name = self.signal_name or signal.Signals(signum).name


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT, SIGTERM and SIGHUP handled by a StopRequest (main thread only)."""
    request = StopRequest()
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, request.handle) for s in handled}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass
class _Readiness:
    """What is still awaited; a worker pool seen once counts as up."""

    serve_ready: str
    flower_url: str
    pools: Mapping[str, Sequence[str]]
    active_queues: ActiveQueues | None
    pending: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.pending = {"serve", "flower", *(f"worker-{p}" for p in self.pools)}

    def check(self) -> bool:
        if "serve" in self.pending and http_status(self.serve_ready) == 200:
            self.pending.discard("serve")
        if "flower" in self.pending and http_status(self.flower_url) is not None:
            self.pending.discard("flower")
        workers = {p for p in self.pending if p.startswith("worker-")}
        if workers:
            if self.active_queues is None:
                self.pending -= workers
            else:
                for pool in worker_liveness(self.pools, self.active_queues):
                    if pool.alive:
                        self.pending.discard(f"worker-{pool.name}")
        return not self.pending


def run_stack(settings: Settings, options: StackOptions, pools: Mapping[str, Sequence[str]],
              view: StackView, *, active_queues: ActiveQueues | None = None,
              ready_timeout_s: float = READY_TIMEOUT_S, status_every_s: float | None = 1.0,
              stop_timeout_s: float = STOP_TIMEOUT_S, extra_env: Mapping[str, str] | None = None,
              done: Callable[[], bool] | None = None) -> StackExit:
    """Start the stack, wait until it is ready, show its status every ``status_every_s`` (None:
    never) until a signal, a failure or, once ready, ``done()`` says so; then stop everything.
    ``extra_env`` goes to every child (the demo's compressed schedule). Call from the main
    thread."""
    options.validate()
    credentials = flower_credentials(settings)
    with stop_on_signals() as stop:
        redis = stack_redis(settings)
        env = {**os.environ, **(extra_env or {}), **redis.child_env(),
               "PYTHONUNBUFFERED": "1"}
        children: list[Child] = []
        failure: str | None = None
        tail: list[str] = []
        try:
            log_dir = _private_dir(settings.log_dir_path / "up")
            children.extend(spawn(spec, env, log_dir)
                            for spec in child_specs(options, list(pools), credentials))
            serve_url = options.url(options.serve_port)
            flower_url = options.url(options.flower_port) + "/"
            view.started(StackInfo(redis, serve_url, flower_url, credentials, tuple(children),
                                   log_dir))
            failure, tail = _supervise(
                children, stop, view, _Readiness(f"{serve_url}/health/ready", flower_url,
                                                 pools, active_queues),
                StatusReader(settings, redis.url), ready_timeout_s, status_every_s,
                [credentials.setting], done)
        finally:
            try:
                view.stopping(stop.signal_name)  # may fail (a closed terminal): stop anyway
            finally:
                killed = stop_children(children, lambda: stop.forced, stop_timeout_s)
                if redis.started_here and redis.embedded is not None:
                    _stop_embedded(redis.embedded)
    return StackExit(stop.signal_name, failure, tuple(tail), tuple(killed))


def _supervise(children: Sequence[Child], stop: StopRequest, view: StackView,
               readiness: _Readiness, reader: StatusReader, ready_timeout_s: float,
               status_every_s: float | None, hidden: Sequence[str],
               done: Callable[[], bool] | None = None) -> tuple[str | None, list[str]]:
    """The loop of a running stack; returns why it must stop (None: a signal, or ``done``) and
    the tail of the log of a child that died."""
    started = time.monotonic()
    ready = False
    next_check = next_status = started
    while stop.signal_name is None:
        for c in children:
            code = c.proc.poll()
            if code is not None:
                why = (f"{c.spec.name} (pid {c.pid}) exited with code {code}; the stack was "
                       f"stopped (log: {c.log_path})")
                return why, log_tail(c.log_path, hidden)
        now = time.monotonic()
        if not ready and now >= next_check:
            if readiness.check():
                ready = True
                view.ready(time.monotonic() - started)
            elif now - started > ready_timeout_s:
                why = (f"the stack was not ready within {ready_timeout_s:g}s (still waiting "
                       f"for {', '.join(sorted(readiness.pending))}); it was stopped")
                return why, []
            next_check = time.monotonic() + 1.0
        if ready and done is not None and done():
            return None, []
        if ready and status_every_s is not None and now >= next_status:
            view.status(reader.read())
            next_status = now + status_every_s
        time.sleep(TICK_S)
    return None, []


def _private_dir(path: Path) -> Path:
    """``path`` and its missing parents created 0700 (for the children's logs)."""
    try:
        for folder in reversed([p for p in (path, *path.parents) if not p.exists()]):
            folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"MLOPS_LOG_DIR: cannot create {path}: {exc.strerror}") from exc
    return path


def _stop_embedded(embedded: EmbeddedRedis) -> None:
    with contextlib.suppress(MlopsError):  # already gone, or refusing: nothing more to do here
        embedded.stop()
