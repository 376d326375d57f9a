"""A real redis-server process for the tests: free port, own folder, kill and restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import redis

from mlops_tasks.embedded import find_server_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, data_dir: Path, *, appendonly: bool = False,
                 appendfsync: str = "everysec", port: int | None = None,
                 password: str | None = None, aclfile: Path | None = None,
                 username: str | None = None) -> None:
        """``password`` turns on ``requirepass``; ``url`` and ``client()`` then carry it.
        ``aclfile`` loads Redis ACL users; ``username`` (with ``password``) logs in as one."""
        self.data_dir = data_dir
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.port = port or free_port()
        self.password = password
        self.aclfile = aclfile
        self.username = username
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        user = quote(self.username or "", safe="")
        auth = f"{user}:{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, username=self.username, password=self.password,
                           decode_responses=True)

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [find_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", self.appendfsync, "--logfile", str(self.data_dir / "redis.log")]
        if self.aclfile:
            args += ["--aclfile", str(self.aclfile)]
        elif self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Graceful shutdown (flushes the append-only file)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # redis-server treats SIGTERM as SHUTDOWN
            self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL: whatever was not fsynced is lost."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()
