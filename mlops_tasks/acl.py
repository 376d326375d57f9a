"""Least privilege on Redis: one ACL user per role, each allowed only what its processes do.

    detector  the thin client (``mlops_tasks.client``): pushes event batches onto the events
              queue (kombu: SMEMBERS/SADD of the queue's binding set, LPUSH onto the queue),
              journals them (``keys.journal``/``keys.journal_entry``), and reads the resolved
              configuration through the read cache, counting the hit or miss; on a miss it
              reads the epoch, meta, deployments, versions and revisions, and leaves filling
              the cache to the workers (the monitoring job). It reads no other registry key,
              writes none, and sees no other queue or model data.
    worker    ingest, monitoring, tuning, cleanup and beat: every project key (``mlops:*``),
              the broker's queues, bindings and unacknowledged messages, Celery's results
              (``celery-task-meta-*``) and remote-control replies, every channel (events and
              pidbox are pub/sub); no administrative or dangerous command (CONFIG, ACL, FLUSHALL,
              KEYS, DEBUG, SHUTDOWN, ...) except INFO.
    operator  the CLI and ``mlops serve``: everything.

Each process picks its role by the user in its URL (``REDIS_URL=redis://worker:<pw>@host/0``).
The passwords come from ``MLOPS_REDIS_<ROLE>_PASSWORD``; the rules carry only their SHA-256
(``#<hex>``), so an ACL file or command list holds no password. The ``default`` user is turned
off: a client without credentials is refused instead of getting everything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

import redis

from .errors import ConfigError, PermissionDeniedError
from .queues import EVENTS_QUEUE
from .roles import DETECTOR, OPERATOR, ROLES, WORKER
from .settings import Settings

PASSWORD_VARIABLES = {role: f"MLOPS_REDIS_{role.upper()}_PASSWORD" for role in ROLES}

# Connecting (redis-py and kombu): AUTH is always allowed; HELLO, CLIENT SETNAME and
# SELECT are sent by the clients on every new connection.
_CONNECT = ("+ping", "+hello", "+client|setname", "+client|id", "+select",
            "+echo")
_MODEL = "mlops:{*}"  # every key of a model (keys.py); "{" is no wildcard in Redis patterns

_DETECTOR_RULES = (
    "-@all", *_CONNECT,
    "+multi", "+exec", "+discard", "+watch", "+unwatch",
    "+wait", "+role",  # behind Sentinel: a journal entry waits for its replicas
    # the events queue, in selectors of their own so that no other command reaches it: kombu
    # looks up the exchange's bindings and declares its own (SMEMBERS, SADD), checks the queue's
    # length at each priority (LLEN of the queue and of its suffixed names) and pushes (LPUSH)
    f"(~_kombu.binding.{EVENTS_QUEUE}", f"~_kombu.binding_permanent.{EVENTS_QUEUE}",
    "+smembers", "+sadd)",
    f"(~{EVENTS_QUEUE}*", "+llen", "+lpush)",
    # the journal: SET of the batch, ZADD of its id (ingest/journal.py)
    "+set", "+zadd", f"%W~{_MODEL}:journal", f"%W~{_MODEL}:journal:*",
    # the resolved configuration (registry/store.py `resolved`): the read cache is read-only
    # here (workers fill it), only its hit and miss counters are written
    "+get", "+hget", "+hgetall", "+hkeys", "+hexists",
    "+lindex", "+llen", "+lrange", "+exists", "+hincrby",
    f"%R~{_MODEL}:cache:*", f"~{_MODEL}:stats:cache",
    f"%R~{_MODEL}:epoch", f"%R~{_MODEL}:meta", f"%R~{_MODEL}:deploy",
    f"%R~{_MODEL}:versions",
    f"%R~{_MODEL}:rev:*",
)

_WORKER_RULES = (
    "+@all", "-@admin", "-@dangerous", "+info", "+role", *_CONNECT,
    "~mlops:*",  # the project's keys, redbeat's included (keys.py)
    "~mlops.*",  # the queues (queues.py) with kombu's priority suffixes
    "~_kombu.binding*", "~unacked*",  # unacked, unacked_index, unacked_mutex
    "~celery*",  # results (celery-task-meta-<id>) and the default queue
    "~*.celery.pidbox*",  # remote control: each node's mailbox and the replies
    "&*",  # task events and remote control are pub/sub channels
)

_OPERATOR_RULES = ("+@all", "~*", "&*")

RULES = {DETECTOR: _DETECTOR_RULES, WORKER: _WORKER_RULES, OPERATOR: _OPERATOR_RULES}


@dataclass(frozen=True)
class AclUser:
    name: str
    rules: tuple[str, ...]  # ACL SETUSER arguments, the password as its SHA-256 (#<hex>)

    def line(self) -> str:
        """The ACL file line of this user."""
        return " ".join(["user", self.name, *(_quote(rule) for rule in self.rules)])

    def command(self) -> list[str]:
        """The ``ACL SETUSER`` command of this user, as arguments."""
        return ["ACL", "SETUSER", self.name, *self.rules]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "rules": list(self.rules)}


def password_hash(password: str) -> str:
    """A password as Redis stores it: ``#`` and its SHA-256 in hex."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def passwords_given(settings: Settings) -> dict[str, str | None]:
    """Each role's password setting, None where unset."""
    return {DETECTOR: settings.redis_detector_password,
            WORKER: settings.redis_worker_password,
            OPERATOR: settings.redis_operator_password}


def passwords(settings: Settings) -> dict[str, str]:
    """Each role's password from its setting; ConfigError naming every one that is unset."""
    given = passwords_given(settings)
    missing = [PASSWORD_VARIABLES[role] for role, value in given.items() if not value]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: not set; each Redis role needs its own "
                          "password (a long random string)")
    return {role: str(value) for role, value in given.items()}


def password(settings: Settings, role: str) -> str:
    """One role's password from its setting; ConfigError naming it when unset."""
    value = passwords_given(settings)[role]
    if not value:
        raise ConfigError(f"{PASSWORD_VARIABLES[role]}: not set; with MLOPS_REDIS_ACL=on "
                          f"every process logs in to the embedded Redis as its role ({role})")
    return value


def users(role_passwords: dict[str, str]) -> list[AclUser]:
    """The ``default`` user turned off, then one user per role with its rules."""
    return [AclUser("default", ("reset", "off")),
            *(AclUser(role, ("reset", "on", password_hash(role_passwords[role]),
                             "resetchannels", *RULES[role])) for role in ROLES)]


def acl_file(acl_users: Iterable[AclUser]) -> str:
    """An ACL file (``aclfile`` in redis.conf, or ``ACL LOAD``)."""
    return "".join(f"{user.line()}\n" for user in acl_users)


def setuser_commands(acl_users: Iterable[AclUser]) -> str:
    """``ACL SETUSER`` commands, one a line, for ``redis-cli`` (a managed Redis without an ACL
    file); the default user last, so the session that runs them keeps working until the end."""
    ordered = sorted(acl_users, key=lambda user: user.name == "default")
    return "".join(" ".join(_quote(arg) for arg in user.command()) + "\n" for user in ordered)


def _quote(rule: str) -> str:
    """A rule as an ACL file token: plain, or double-quoted with C escapes when it holds
    spaces or control characters (kombu's priority suffix)."""
    if re.fullmatch(r"[\x21-\x7e]+", rule) and '"' not in rule:
        return rule
    return '"' + "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else f"\\x{ord(c):02x}"
                         for c in rule) + '"'


def user_of(url: str | None) -> str:
    """The Redis user a URL logs in as (``default`` without one)."""
    match = re.match(r"^[a-z+]+://([^:@/]*)(?::[^@/]*)?@", url or "")
    return unquote(match.group(1)) if match and match.group(1) else "default"


def client_user(client: redis.Redis) -> str:
    """The Redis user a client logs in as, from its connection settings (no round trip)."""
    return str(client.connection_pool.connection_kwargs.get("username") or "default")


def whoami(client: redis.Redis) -> str | None:
    """The user Redis says the connection is authenticated as (``ACL WHOAMI``); None when
    the server has no ACLs or the user may not ask."""
    try:
        answer = client.execute_command("ACL", "WHOAMI")  # type: ignore[no-untyped-call]
    except redis.ResponseError:  # NoPermissionError included
        return None
    return answer.decode() if isinstance(answer, bytes) else str(answer)


def denied(user: str, action: str, exc: Exception) -> PermissionDeniedError:
    """The one-line error of a command Redis refused to ``user`` for lack of permission:
    the user, what it tried, and Redis's reason (which names the command or says a key)."""
    reason = str(exc).splitlines()[0] if str(exc) else "no permission"
    reason = re.sub(r"^Command # \d+ \(.*\) of pipeline caused error: ", "", reason)
    return PermissionDeniedError(
        f"Redis user {user!r} may not {action}: {reason} (each role's rights: "
        "`mlops redis acl`; registry changes need the operator's credentials)")
