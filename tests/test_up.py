"""`mlops up`: the whole stack as a real process, against a real Redis (the operator's, or the
embedded one), with real workers, beat, Flower and serve; stopped by signals."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from mlops_tasks.acl import PASSWORD_VARIABLES
from mlops_tasks.roles import ROLES
from mlops_tasks.settings import Settings
from mlops_tasks.stack import (
    Child,
    ChildSpec,
    FlowerCredentials,
    StackInfo,
    StackRedis,
    StatusReader,
    StopRequest,
    events_rate,
    live_groups,
    stop_children,
)

from .conftest import Cli, wait_for
from .processes import http_get as get
from .processes import project_env
from .redis_server import RedisServer, free_port

ACL_PASSWORDS = {role: f"{role}-pw-{role[::-1]}" for role in ROLES}
ACL_PASSWORD_ENV = {PASSWORD_VARIABLES[role]: pw for role, pw in ACL_PASSWORDS.items()}
START_S = 240.0  # generous: nine Python processes starting on a loaded 2-core machine
STOP_S = 120.0


def answers(url: str, status: int) -> bool:
    try:
        return get(url, timeout=10)[0] == status
    except OSError:
        return False


def running_in_groups(pgids: set[int]) -> list[int]:
    """Processes (not zombies) of these process groups, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] not in {"Z", "X"}:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


class Up:
    """`mlops up --json` in its own session; its JSON line read from stdout."""

    def __init__(self, env: dict[str, str], log_dir: Path, *args: str) -> None:
        self.serve_port, self.flower_port = free_port(), free_port()
        self.stderr_path = log_dir / f"up-{time.monotonic_ns()}.err"
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlops_tasks.cli.main", "up", "--json",
                 "--serve-port", str(self.serve_port), "--flower-port", str(self.flower_port),
                 "--concurrency", "1", *args],
                env=env, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        self.info: dict[str, Any] = {}

    def read_info(self, timeout: float = START_S) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        assert line, f"no JSON line from mlops up: {self.stderr()[-3000:]}"
        self.info = json.loads(line)
        return self.info

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def url(self, path: str) -> str:
        return f"{self.info['serve']['url']}{path}"

    def pids(self) -> set[int]:
        return {c["pid"] for c in self.info.get("children", [])}

    def wait(self, timeout: float = STOP_S) -> int:
        return self.proc.wait(timeout)

    def cleanup(self) -> None:
        """After a failed test: nothing of this stack is left running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for pgid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        redis_pid = self.info.get("redis", {}).get("pid")
        if redis_pid and self.info["redis"]["started_here"] and alive(redis_pid):
            os.kill(redis_pid, signal.SIGKILL)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Any]:
    started: list[Up] = []

    def start(env: dict[str, str], *args: str) -> Up:
        proc = Up(env, tmp_path, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.cleanup()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def predictions_counted(up: Up, model: str) -> float:
    status, text = get(up.url("/metrics"))
    assert status == 200, text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "mlops_predictions_total" and s.labels.get("model") == model:
                return float(s.value)
    return 0.0


def assert_all_gone(up: Up) -> None:
    pids = up.pids()
    assert len(pids) == 6
    assert not [p for p in pids if alive(p)]
    assert running_in_groups(pids) == []


def test_up_serves_counts_events_and_stops_on_sigterm(up: Any, private_redis: RedisServer,
                                                      tmp_path: Path) -> None:
    """Given `mlops up` on the operator's Redis, when it is ready and a detector sends events
    through the client, then /metrics counts them, Flower wants the printed credentials, and
    SIGTERM stops every child and its process group; the password is in no log."""
    from mlops_tasks.client import MonitoringClient

    env = project_env(private_redis.url, MLOPS_DATA_DIR=str(tmp_path / "data"))
    stack = up(env)
    info = stack.read_info()
    assert {c["name"] for c in info["children"]} == {
        "worker-events", "worker-monitoring", "worker-tuning", "beat", "flower", "serve"}
    assert info["redis"] == {"url": private_redis.url, "embedded": False,
                             "started_here": False, "pid": None}
    assert info["flower"]["credentials_from"] == "generated"
    password = info["flower"]["password"]
    assert len(password) >= 20

    # when ready, a model registered and events sent with the thin client
    wait_for(lambda: answers(stack.url("/health/ready"), 200) or stack.proc.poll() is not None,
             timeout=START_S, interval=0.5, what="/health/ready")
    assert stack.proc.poll() is None, stack.stderr()
    Cli()("register-all-models", env={"REDIS_URL": private_redis.url})
    n = 300
    settings = Settings.from_env({"REDIS_URL": private_redis.url,
                                  "MLOPS_DATA_DIR": str(tmp_path / "data")})
    rng = np.random.default_rng(7)
    with MonitoringClient(redis_url=private_redis.url, settings=settings) as client:
        client.record_batch("n1-detector", rng.random(n), actual=rng.random(n) < 0.5)
        assert client.flush(60)

    # then /metrics counts them
    wait_for(lambda: predictions_counted(stack, "n1-detector") == n, timeout=START_S,
             interval=0.5, what="the events in /metrics")
    # and Flower answers only with the printed credentials
    flower = info["flower"]["url"]
    assert get(flower)[0] == 401
    assert get(flower, auth=f"{info['flower']['user']}:wrong")[0] == 401
    assert get(flower, auth=f"{info['flower']['user']}:{password}")[0] == 200

    # when SIGTERM, then it exits 0 with nothing left running
    os.kill(stack.proc.pid, signal.SIGTERM)
    assert stack.wait() == 0, stack.stderr()
    assert_all_gone(stack)
    for child in info["children"]:
        assert password not in Path(child["log"]).read_text(errors="replace"), child["name"]
    assert password not in stack.stderr()


def test_a_dead_child_stops_the_stack_and_its_embedded_redis(up: Any, tmp_path: Path) -> None:
    """Given `mlops up` without REDIS_URL and with MLOPS_REDIS_ACL=on (the embedded Redis,
    started by it with the roles' ACLs), when a detector sends events, then the workers count
    them, no process was refused a command and no password shows in a command line, a log or
    the JSON; when beat is killed, then the stack reports it, stops every other child and the
    Redis it started, and exits 1."""
    from mlops_tasks.client import MonitoringClient

    data = tmp_path / "d"
    env = {**os.environ, "MLOPS_DATA_DIR": str(data), "MLOPS_REDIS_ACL": "on",
           **ACL_PASSWORD_ENV}  # clean_env took the rest
    assert "REDIS_URL" not in env
    stack = up(env)
    info = stack.read_info()
    redis_info = info["redis"]
    assert redis_info["embedded"] is True
    assert redis_info["started_here"] is True
    assert redis_info["url"].startswith("unix://")
    assert alive(redis_info["pid"])
    wait_for(lambda: answers(stack.url("/health/ready"), 200) or stack.proc.poll() is not None,
             timeout=START_S, interval=0.5, what="/health/ready")
    assert stack.proc.poll() is None, stack.stderr()

    # when: the operator registers the models and a detector (its own login) sends events
    Cli()("register-all-models", env={k: env[k] for k in ("MLOPS_DATA_DIR", "MLOPS_REDIS_ACL",
                                                          *ACL_PASSWORD_ENV)})
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("MLOPS_")})
    n = 200
    rng = np.random.default_rng(3)
    with MonitoringClient(settings=settings) as client:
        client.record_batch("n1-detector", rng.random(n), actual=rng.random(n) < 0.5)
        assert client.flush(60)
    # then: they are counted, and Redis refused nothing to any of the stack's processes
    wait_for(lambda: predictions_counted(stack, "n1-detector") == n, timeout=START_S,
             interval=0.5, what="the events in /metrics")
    operator = redis.Redis(unix_socket_path=redis_info["url"][len("unix://"):],
                           username="operator", password=ACL_PASSWORDS["operator"])
    assert operator.acl_log() == []
    assert set(operator.acl_users()) == {"default", *ACL_PASSWORDS}
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=redis_info["url"][len("unix://"):]).ping()
    # and: no password in a command line, the JSON line or a child's log
    leaks = [pw for pw in ACL_PASSWORDS.values()
             if pw in json.dumps(info) or pw in stack.stderr()
             or any(pw in Path(c["log"]).read_text(errors="replace") for c in info["children"])
             or any(pw.encode() in cmdline for cmdline in command_lines())]
    assert leaks == []

    beat = next(c["pid"] for c in info["children"] if c["name"] == "beat")
    os.kill(beat, signal.SIGKILL)

    assert stack.wait() == 1
    err = stack.stderr()
    assert f"error: beat (pid {beat}) exited with code -9" in err, err
    assert_all_gone(stack)
    wait_for(lambda: not alive(redis_info["pid"]), timeout=30, what="the embedded Redis to stop")


def command_lines() -> list[bytes]:
    """Every process's command line, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found.append((entry / "cmdline").read_bytes())
    return found


def test_children_stop_when_up_itself_is_killed(up: Any, private_redis: RedisServer,
                                                tmp_path: Path) -> None:
    """Given a ready stack, when `mlops up` is killed with SIGKILL (no chance to stop
    anything), then the kernel's SIGTERM to each child (PR_SET_PDEATHSIG) stops them all."""
    stack = up(project_env(private_redis.url, MLOPS_DATA_DIR=str(tmp_path / "data")))
    stack.read_info()
    wait_for(lambda: answers(stack.url("/health/ready"), 200) or stack.proc.poll() is not None,
             timeout=START_S, interval=0.5, what="/health/ready")
    assert stack.proc.poll() is None, stack.stderr()
    os.kill(stack.proc.pid, signal.SIGKILL)
    stack.wait()
    wait_for(lambda: not running_in_groups(stack.pids()), timeout=STOP_S, interval=0.5,
             what="every child to stop")


STRAY = """
import signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c",
                  "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  "print('stray', flush=True); time.sleep(600)"])
time.sleep(600)
"""


def test_stop_terminates_the_main_process_then_kills_what_is_left_of_its_group(
        tmp_path: Path) -> None:
    """Given a child whose main process stops on SIGTERM but leaves a process of its group that
    ignores SIGTERM, when the children are stopped, then that process is killed and reported,
    and nothing of the group is left."""
    log = tmp_path / "stray.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", STRAY], stdout=out,
                                start_new_session=True)
    try:
        wait_for(lambda: b"stray" in log.read_bytes(), timeout=60, what="the stray to start")
        assert len(live_groups([proc.pid])[proc.pid]) == 2
        killed = stop_children([Child(ChildSpec("stray", ()), proc, log)], lambda: False)
        assert killed == ["stray"]
        assert proc.returncode == -signal.SIGTERM
        assert live_groups([proc.pid]) == {}
        assert running_in_groups({proc.pid}) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_bad_options_fail_in_one_line_naming_the_option(redis_url: str) -> None:
    """Given equal ports, or a port another process listens on, then `mlops up` exits 1 with
    one line naming the option, having started nothing."""
    cli = Cli()
    port = free_port()
    same = cli("up", "--serve-port", str(port), "--flower-port", str(port), expect=1)
    assert same.stderr.strip().splitlines() == [
        f"error: --flower-port {port}: the same as --serve-port; choose two different ports"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = cli("up", "--serve-port", str(taken), "--flower-port", str(free_port()),
                     expect=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --serve-port {taken}: cannot listen on 127.0.0.1:"), lines
    assert cli("up", "--host", "no-such-host.invalid", expect=1).stderr.startswith(
        "error: --host 'no-such-host.invalid': cannot resolve it")


def test_the_status_line_counts_events_and_alerts_from_redis(pipe: Any, redis_url: str) -> None:
    """Given a status reader, when predictions are ingested and an alert fires between two
    reads, then the second read has a positive event rate and the alert."""
    from mlops_tasks.alerts.model import Alert

    reader = StatusReader(Settings.from_env(), redis_url)
    first = reader.read()
    assert (first.events_per_s, first.alerts_firing, first.error) == (None, 0, None)
    pipe.feed("n1-detector", 300, 0.9)
    pipe.svc.alerts.raise_alert(Alert("n1-detector", "1.0.0", "accuracy_below_threshold",
                                      "warning", "low"))
    second = reader.read()
    assert second.error is None
    assert second.events_per_s is not None
    assert second.events_per_s > 0
    assert second.alerts_firing == 1


@pytest.mark.parametrize(("previous", "now", "total", "rate"), [
    (None, 10.0, 50.0, None),  # the first sample has nothing to compare with
    ((10.0, 50.0), 12.0, 150.0, 50.0),
    ((10.0, 150.0), 11.0, 20.0, 0.0),  # a new version's count starts again: no events
    ((10.0, 50.0), 10.0, 60.0, None),  # no time passed
])
def test_events_rate(previous: Any, now: float, total: float, rate: float | None) -> None:
    """Events per second between two samples of the running total."""
    assert events_rate(previous, now, total) == rate


def test_a_second_interrupt_forces_the_stop() -> None:
    """Given a stop request, the first SIGINT or SIGTERM asks to stop, a second forces it;
    SIGHUP (a closed terminal) asks but never forces."""
    request = StopRequest()
    request.handle(signal.SIGHUP, None)
    request.handle(signal.SIGHUP, None)
    assert (request.signal_name, request.forced) == ("SIGHUP", False)
    request = StopRequest()
    request.handle(signal.SIGINT, None)
    assert (request.signal_name, request.forced) == ("SIGINT", False)
    request.handle(signal.SIGTERM, None)
    assert (request.signal_name, request.forced) == ("SIGINT", True)


def test_the_password_is_printed_to_a_terminal_only(capsys: pytest.CaptureFixture[str]) -> None:
    """Given generated Flower credentials, the human output shows the password on a terminal
    and withholds it when stdout is redirected (a log); the Redis password is masked."""
    from mlops_tasks.cli.up_cmds import TextView

    info = StackInfo(StackRedis("redis://:redispw@127.0.0.1:1/0", None, started_here=False,
                                pid=None),
                     "http://127.0.0.1:2", "http://127.0.0.1:3/",
                     FlowerCredentials("mlops", "generated-pw", "generated",
                                       "mlops:generated-pw"), (), Path("/logs"))
    TextView(live=True).started(info)
    shown = capsys.readouterr().out
    assert "password generated-pw" in shown
    TextView(live=False).started(info)
    redirected = capsys.readouterr().out
    assert "generated-pw" not in redirected
    assert "password not shown" in redirected
    assert "redispw" not in shown + redirected
