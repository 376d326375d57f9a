"""`mlops worker` and `mlops beat` subprocesses for the tests that kill and restart them."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from mlops_tasks.settings import ENV_PREFIX, known_variables


def project_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in known_variables() and not k.startswith(ENV_PREFIX)}
    env.update(REDIS_URL=redis_url, MLOPS_LOG_LEVEL="info", **extra)
    return env


class MlopsProcess:
    """An `mlops` command in its own process group, its log in a file."""

    command = ""

    def __init__(self, redis_url: str, log_dir: Path, *args: str, **env: str) -> None:
        self.redis_url = redis_url
        self.log_path = log_dir / f"{self.command}-{time.monotonic_ns()}.log"
        self.args = args
        self.env = project_env(redis_url, **env)
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with self.log_path.open("wb") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlops_tasks.cli.main", self.command, *self.args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no acks, no lock release."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class WorkerProcess(MlopsProcess):
    command = "worker"

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        """Spawn and wait until Celery says the worker is ready."""
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log_path.read_bytes():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready: {self.log()[-2000:]}")


class BeatProcess(MlopsProcess):
    command = "beat"

    def start(self) -> BeatProcess:
        self.spawn()
        return self


def http_get(url: str, auth: str | None = None, timeout: float = 30.0) -> tuple[int, str]:
    """Status and body of a GET to one of the processes' local HTTP servers (``auth``:
    ``user:password`` for basic auth); an HTTP error status is an answer, not an exception."""
    req = urllib.request.Request(url)  # noqa: S310 - http://127.0.0.1 URLs of the tests
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - same
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class ServeProcess(MlopsProcess):
    command = "serve"

    def start(self, port: int, timeout: float = 30.0) -> ServeProcess:
        """Spawn and wait until /health/live answers."""
        self.port = port
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log()[-2000:]}")
            try:
                if self.get("/health/live")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve not up: {self.log()[-2000:]}")

    def get(self, path: str, auth: str | None = None,
            timeout: float = 15.0) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.port}{path}", auth, timeout)
