"""The embedded Redis trusts nothing in its data directory that it did not create.

Tests run as root, so "another user" is uid 65534 (nobody): planted files and folders are handed
to it with ``os.chown``. Every redis-server a test starts runs inside its ``tmp_path`` and is
stopped by the autouse fixture, whatever the test left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_tasks.embedded import EmbeddedRedis

from .test_embedded_redis import mlops

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")


@pytest.fixture(autouse=True)
def stop_servers(tmp_path: Path) -> Iterator[None]:
    """SIGTERM, after the test, every redis-server whose working folder is in its tmp_path."""
    yield
    root = os.path.realpath(tmp_path)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = str((entry / "cwd").readlink())
            exe = (entry / "exe").readlink().name
        except OSError:
            continue
        if exe.startswith("redis") and (cwd == root or cwd.startswith(root + "/")):
            pids.append(int(entry.name))
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        time.sleep(0.05)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process that must survive the test."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


class FakeServer:
    """A Unix socket that answers ``+PONG`` to anything and records what it was sent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received = b""
        self.connections = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    while chunk := conn.recv(65536):
                        self.received += chunk
                        conn.sendall(b"+PONG\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def fake_server(tmp_path: Path) -> Iterator[FakeServer]:
    data = _private_dir(tmp_path / "data")
    server = FakeServer(data / "redis.sock")
    yield server
    server.close()


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A private runtime folder short enough for a socket path (tmp_path is too long)."""
    path = Path(tempfile.mkdtemp(prefix="xdg-"))  # 0700, ours
    yield path
    shutil.rmtree(path)


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True)
    return path


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- the data directory ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702])
def test_a_data_dir_others_can_write_is_refused_in_one_line(tmp_path: Path, mode: int) -> None:
    """A data directory writable by group or others could hold anything: the CLI refuses it,
    names it and says how to fix it, and starts no server."""
    # given a data directory other users can write into
    data = _private_dir(tmp_path / "data")
    data.chmod(mode)
    # when a command needs the embedded Redis
    result = mlops("list-models", "--json", data_dir=data, expect=1)
    # then it fails in one line naming the folder, its mode and the fix, and starts nothing
    line = _one_error_line(result)
    assert line.startswith(f"error: MLOPS_DATA_DIR {data}: expected a folder owned by uid 0")
    assert f"mode {mode:04o}" in line and f"chmod 700 {data}" in line
    assert list(data.iterdir()) == []


def test_a_data_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    """A private folder is still not ours if another user owns it."""
    # given a data directory with mode 0700 that belongs to nobody
    data = _private_dir(tmp_path / "data")
    os.chown(data, NOBODY, NOBODY)
    # when a command needs the embedded Redis
    result = mlops("list-models", "--json", data_dir=data, expect=1)
    # then it is refused in one line naming the owner
    line = _one_error_line(result)
    assert f"MLOPS_DATA_DIR {data}" in line and f"owner uid {NOBODY}" in line
    assert list(data.iterdir()) == []


def test_a_missing_data_dir_is_created_private_with_its_parents(tmp_path: Path) -> None:
    """Folders the tools create for themselves are 0700, parents included."""
    # given a data directory two levels below anything that exists
    data = tmp_path / "a" / "b" / "data"
    # when the embedded Redis is started
    mlops("redis", "start", data_dir=data)
    # then every folder created on the way is owner-only
    for folder in (tmp_path / "a", tmp_path / "a" / "b", data):
        assert _mode(folder) == 0o700 and folder.stat().st_uid == os.getuid()
    mlops("redis", "stop", data_dir=data)


def test_a_data_dir_that_cannot_be_created_is_reported_in_one_line(tmp_path: Path) -> None:
    """An impossible data directory is a one-line error naming the path and the OS reason."""
    # given a data directory below a regular file
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    data = blocker / "sub" / "data"
    # when a command needs the embedded Redis
    result = mlops("list-models", "--json", data_dir=data, expect=1)
    # then one line names the folder and why, with no traceback
    line = _one_error_line(result)
    assert f"MLOPS_DATA_DIR {data}: cannot create {blocker / 'sub'}: Not a directory" in line


# --- files planted in the data directory --------------------------------------------------------


@pytest.mark.parametrize("name", ["redis.lock", "redis.pid", "redis.log", "redis.sock"])
def test_a_symlink_planted_where_we_write_never_touches_its_target(tmp_path: Path,
                                                                   name: str) -> None:
    """A symlink named like the lock, pid file, log or socket is refused: its target (here a
    root-owned file) is neither truncated nor appended to, and no server starts."""
    # given a victim file and a symlink to it, owned by another user, in the data directory
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    data = _private_dir(tmp_path / "data")
    (data / name).symlink_to(victim)
    os.chown(data / name, NOBODY, NOBODY, follow_symlinks=False)
    # when the embedded Redis is started
    result = mlops("redis", "start", data_dir=data, expect=1)
    # then the command refuses the symlink in one line and the victim is unchanged
    line = _one_error_line(result)
    assert f"{data / name} is a symbolic link" in line
    assert victim.read_text() == "precious\n"
    assert {p.name for p in data.iterdir()} <= {name, "redis.lock"}  # no server ever started


def test_a_forged_pid_file_never_gets_its_process_signalled(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """The pid comes from the server itself: a pid file naming another process changes
    nothing; stop shuts down the real server and leaves the other process alone."""
    # given a running embedded Redis whose pid file now names an unrelated process
    data = tmp_path / "data"
    real_pid = json.loads(mlops("redis", "start", "--json", data_dir=data).stdout)["pid"]
    (data / "redis.pid").write_text(f"{sleeper.pid}\n")
    # when its status is read and it is stopped
    status = json.loads(mlops("redis", "status", "--json", data_dir=data).stdout)
    mlops("redis", "stop", data_dir=data)
    # then the status named the real server, which is gone, and the other process still runs
    assert status["pid"] == real_pid != sleeper.pid
    assert not Path(f"/proc/{real_pid}").exists()
    assert sleeper.poll() is None
    assert not EmbeddedRedis(data).is_running()


def test_a_socket_planted_by_another_user_receives_nothing(tmp_path: Path,
                                                           fake_server: FakeServer) -> None:
    """A socket of another user at redis.sock is never connected to, let alone sent data."""
    # given a listening socket at redis.sock that belongs to nobody
    data = fake_server.path.parent
    os.chown(fake_server.path, NOBODY, NOBODY)
    # when commands that write the registry or stop the server run
    refused = [mlops(*args, data_dir=data, expect=1)
               for args in (("register-all-models",), ("redis", "stop"))]
    # then they fail in one line naming the owner, and the socket saw no connection at all
    for result in refused:
        line = _one_error_line(result)
        assert f"{fake_server.path} belongs to uid {NOBODY}" in line
    assert fake_server.connections == 0 and fake_server.received == b""


def test_an_impostor_on_our_own_socket_gets_no_registry_data(tmp_path: Path,
                                                             fake_server: FakeServer) -> None:
    """A socket of ours whose listener is not our Redis (it answers PONG to anything) is
    refused after the identity question, before any registry command."""
    # given a listening socket of ours at redis.sock that is not a Redis
    data = fake_server.path.parent
    # when a command writes the registry
    result = mlops("register-all-models", data_dir=data, expect=1)
    # then it is refused as an impostor, and only the identity questions reached it
    line = _one_error_line(result)
    assert f"{fake_server.path} is not the embedded Redis of {data}" in line
    commands = re.findall(rb"\*\d+\r\n\$\d+\r\n(\w+)\r\n", fake_server.received)
    assert commands and set(commands) <= {b"INFO", b"CONFIG"}, fake_server.received
    assert b"mlops" not in fake_server.received


def test_a_server_whose_socket_vanished_is_not_doubled(tmp_path: Path) -> None:
    """When the socket of a running server is gone (a cleaned runtime folder), a second
    server is not started on the same append-only file."""
    # given a running embedded Redis whose socket file was removed
    data = tmp_path / "data"
    real_pid = json.loads(mlops("redis", "start", "--json", data_dir=data).stdout)["pid"]
    (data / "redis.sock").unlink()
    # when a command needs the embedded Redis
    result = mlops("list-models", "--json", data_dir=data, expect=1)
    # then it refuses in one line naming the server still running, and starts no other one
    line = _one_error_line(result)
    assert f"embedded Redis pid {real_pid} still runs in {data}" in line
    assert not (data / "redis.sock").exists()


# --- the socket's location and the files' modes -------------------------------------------------


def test_a_long_data_dir_puts_the_socket_in_a_private_runtime_folder(tmp_path: Path,
                                                                      runtime: Path) -> None:
    """A data directory too long for sun_path gets its socket in XDG_RUNTIME_DIR, in a folder
    only we can use, never in the shared temp folder."""
    # given a data directory whose socket path would pass 100 bytes, and a private runtime folder
    data = tmp_path / ("d" * 100) / "data"
    # when the embedded Redis is started and used
    url = json.loads(mlops("redis", "start", "--json", data_dir=data,
                           XDG_RUNTIME_DIR=str(runtime)).stdout)["url"]
    mlops("register-all-models", data_dir=data, XDG_RUNTIME_DIR=str(runtime))
    listed = json.loads(mlops("list-models", "--json", data_dir=data,
                              XDG_RUNTIME_DIR=str(runtime)).stdout)
    # then the socket lives in <runtime>/mlops-tasks, owner-only, not in the temp folder
    sock = Path(url.removeprefix("unix://"))
    assert sock.parent == runtime / "mlops-tasks" and stat.S_ISSOCK(os.lstat(sock).st_mode)
    assert _mode(sock.parent) == 0o700 and sock.parent.stat().st_uid == os.getuid()
    assert sock.parent != Path(tempfile.gettempdir())
    assert len(listed["models"]) == 3
    mlops("redis", "stop", data_dir=data, XDG_RUNTIME_DIR=str(runtime))


def test_a_long_data_dir_without_a_private_runtime_folder_is_refused(tmp_path: Path) -> None:
    """With no private folder for the socket, a too-long data directory is refused rather
    than given a socket other users could bind first."""
    # given a long data directory, and runtime and temp folders anyone can write into
    data = tmp_path / ("d" * 100) / "data"
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    # when a command needs the embedded Redis
    result = mlops("list-models", "--json", data_dir=data, expect=1,
                   XDG_RUNTIME_DIR=str(shared), TMPDIR=str(shared))
    # then it is refused in one line asking for a shorter data directory, and nothing listens
    line = _one_error_line(result)
    assert "too long for the Redis socket" in line and "choose a shorter MLOPS_DATA_DIR" in line
    assert list(shared.iterdir()) == []


def test_append_only_files_log_and_pid_file_are_private(tmp_path: Path) -> None:
    """redis-server runs with umask 077; files an older version left readable are tightened
    at the next start."""
    # given an embedded Redis that has written its append-only files
    data = tmp_path / "data"
    mlops("register-all-models", data_dir=data)
    aof = data / "appendonlydir"
    files = [data / "redis.log", data / "redis.pid", data / "redis.lock", *aof.iterdir()]
    # then the append-only folder and every file are owner-only
    assert _mode(aof) == 0o700
    assert all(_mode(path) == 0o600 for path in files), {p.name: oct(_mode(p)) for p in files}
    # given they were left readable by others, as an older version did
    mlops("redis", "stop", data_dir=data)
    aof.chmod(0o755)
    for path in (data / "redis.log", *aof.iterdir()):
        path.chmod(0o644)
    # when the server starts again
    mlops("list-models", "--json", data_dir=data)
    # then they are owner-only again
    assert _mode(aof) == 0o700
    assert all(_mode(path) & 0o077 == 0 for path in (data / "redis.log", *aof.iterdir()))
    mlops("redis", "stop", data_dir=data)
