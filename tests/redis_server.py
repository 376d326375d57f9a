"""A real redis-server process for the tests: free port, own folder, kill and restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import redis

from mlops_tasks.embedded import find_server_binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a server certificate, its key and the CA that signed it."""

    cert: Path
    key: Path
    ca: Path


class RedisServer:
    def __init__(self, data_dir: Path, *, appendonly: bool = False,
                 appendfsync: str = "everysec", port: int | None = None,
                 password: str | None = None, aclfile: Path | None = None,
                 username: str | None = None, tls: TlsFiles | None = None) -> None:
        """``password`` turns on ``requirepass``; ``url`` and ``client()`` then carry it.
        ``aclfile`` loads Redis ACL users; ``username`` (with ``password``) logs in as one.
        ``tls``: the port speaks TLS only (clients are not asked for a certificate) and
        ``url`` is a ``rediss://`` URL that verifies the server against the CA."""
        self.data_dir = data_dir
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.port = port or free_port()
        self.password = password
        self.aclfile = aclfile
        self.username = username
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_as(self.username, self.password)

    def url_as(self, username: str | None, password: str | None) -> str:
        """The URL of this server with another login."""
        user = quote(username or "", safe="")
        auth = f"{user}:{quote(password, safe='')}@" if password else ""
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        query = urlencode({"ssl_cert_reqs": "required", "ssl_ca_certs": str(self.tls.ca)})
        return f"rediss://{auth}127.0.0.1:{self.port}/0?{query}"

    def client(self) -> redis.Redis:
        tls = ({"ssl": True, "ssl_ca_certs": str(self.tls.ca)} if self.tls is not None else {})
        return redis.Redis(host="127.0.0.1", port=self.port, username=self.username,
                           password=self.password, decode_responses=True, **tls)  # type: ignore[arg-type]

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ports = ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                     "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"]
        args = [find_server_binary(), *ports, "--bind", "127.0.0.1",
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
        self.kill()  # not left running behind the failed test
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
