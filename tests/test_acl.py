"""Least privilege with Redis ACLs: a real redis-server loads `mlops redis acl`'s users; the
detector's credentials send predictions a worker (worker credentials) counts, and are refused
every registry change; the audit trail names the Redis user behind each change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from mlops_tasks import acl, keys
from mlops_tasks.client import MonitoringClient
from mlops_tasks.connection import connect, resolve_redis_url
from mlops_tasks.errors import PermissionDeniedError
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings

from .conftest import Cli, wait_for
from .processes import WorkerProcess
from .redis_server import RedisServer
from .test_registry import register_catalogue

PASSWORDS = {role: f"{role}-s3cret-pw" for role in acl.ROLES}
PASSWORD_ENV = {acl.PASSWORD_VARIABLES[role]: pw for role, pw in PASSWORDS.items()}
MODEL = "n1-detector"


class AclRedis:
    def __init__(self, server: RedisServer) -> None:
        self.server = server

    def url(self, role: str) -> str:
        return f"redis://{role}:{PASSWORDS[role]}@127.0.0.1:{self.server.port}/0"

    def registry(self, role: str) -> Registry:
        return Registry(connect(self.url(role)), Settings.from_env({"REDIS_URL": self.url(role)}))


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[AclRedis]:
    """A private redis-server with the ACL file `mlops redis acl` prints, the catalogue
    registered by the operator."""
    aclfile = tmp_path / "users.acl"
    result = Cli()("redis", "acl", env=PASSWORD_ENV)
    aclfile.write_text(result.stdout)
    server = RedisServer(tmp_path / "redis", aclfile=aclfile, username="operator",
                         password=PASSWORDS["operator"]).start()
    try:
        stack = AclRedis(server)
        register_catalogue(stack.registry("operator"))
        yield stack
    finally:
        server.stop()


def test_detector_sends_what_a_worker_counts_but_cannot_change_the_registry(
        acl_redis: AclRedis, tmp_path: Path) -> None:
    """The detector role is enough to send; the registry stays the operator's."""
    # given: a detector with its own credentials, reading its configuration and sending
    detector_url = acl_redis.url("detector")
    client = MonitoringClient(redis_url=detector_url,
                              settings=Settings.from_env({"REDIS_URL": detector_url}))
    try:
        assert client.current_config(MODEL)["name"] == MODEL
        for i in range(10):
            client.record_prediction(MODEL, 0.5 + i / 100)
        assert client.flush()
    finally:
        client.close()
    # when: a worker with the worker's credentials runs
    worker = WorkerProcess(acl_redis.url("worker"), tmp_path,
                           MLOPS_DATA_DIR=str(tmp_path / "w")).start()
    try:
        op = acl_redis.server.client()
        version = acl_redis.registry("operator").clients_version(MODEL)
        assert version is not None
        # then: it counts them
        wait_for(lambda: op.hget(keys.total(MODEL, version), "n") == "10")
    finally:
        worker.stop()
    assert op.acl_log() == [], "nothing was refused to the detector or the worker"
    assert op.exists(keys.config_cache(MODEL, "latest")) == 0, "the detector fills no cache"

    # and: the same credentials change nothing in the registry
    with pytest.raises(PermissionDeniedError, match="Redis user 'detector' may not change"):
        acl_redis.registry("detector").set_config(MODEL, actor="mallory",
                                                   changes=[("decision_threshold", 0.1)])
    raw = connect(detector_url)
    for write in (lambda: raw.hset(keys.versions(MODEL), "9.9.9", "{}"),
                  lambda: raw.set(keys.epoch(MODEL), 0),
                  lambda: raw.xadd(keys.audit(MODEL), {"entry": "{}"}),
                  lambda: raw.hgetall(keys.total(MODEL, "1.0.0")),
                  lambda: raw.lpush("mlops.monitoring", "x"),
                  lambda: raw.set(keys.config_cache(MODEL, "production"), "{}"),
                  raw.flushall):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()
    result = Cli()("update-config", MODEL, "--set", "decision_threshold=0.1",
                   env={"REDIS_URL": detector_url}, expect=1)
    assert result.stderr.startswith("error: Redis user 'detector' may not change model")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output + result.stderr
    assert PASSWORDS["detector"] not in result.output + result.stderr
    assert op.xlen(keys.audit(MODEL)) == 1  # the register entry only
    read = Cli()("performance-summary", env={"REDIS_URL": detector_url}, expect=1)
    assert read.stderr.startswith("error: Redis user 'detector' may not run `mlops "
                                  "performance-summary`")
    assert "Traceback" not in read.stderr and PASSWORDS["detector"] not in read.stderr


def test_audit_names_the_redis_user_beside_the_declared_actor(acl_redis: AclRedis) -> None:
    """The actor is what the caller says; the Redis user is what Redis says."""
    # when: the operator and a worker (auto-tuning) each change the configuration
    acl_redis.registry("operator").set_config(MODEL, actor="alice",
                                              changes=[("decision_threshold", 0.7)])
    acl_redis.registry("worker").set_config(MODEL, actor="policy:auto-tune",
                                            changes=[("decision_threshold", 0.6)])
    # then: each audit entry carries both
    entries = acl_redis.registry("operator").audit_log(MODEL)
    assert [(e.actor, e.redis_user) for e in entries[:2]] == [
        ("policy:auto-tune", "worker"), ("alice", "operator")]
    assert entries[0].to_dict()["redis_user"] == "worker"


def test_default_user_is_off(acl_redis: AclRedis) -> None:
    """A client without credentials is refused, not given everything."""
    bare = redis.Redis(port=acl_redis.server.port)
    with pytest.raises(redis.exceptions.AuthenticationError):
        bare.get("x")


def test_acl_output_holds_no_password_and_names_missing_ones() -> None:
    """The file and the commands carry the passwords' SHA-256 only; a missing password is a
    one-line error naming its variable."""
    cli = Cli()
    for fmt in ("file", "commands"):
        out = cli("redis", "acl", "--format", fmt, env=PASSWORD_ENV).stdout
        doc = cli.json("redis", "acl", "--format", fmt, env=PASSWORD_ENV)
        for pw in PASSWORDS.values():
            assert pw not in out
            assert acl.password_hash(pw) in out
            assert pw not in str(doc)
        assert [u["name"] for u in doc["users"]] == ["default", *acl.ROLES]
    commands = cli("redis", "acl", "--format", "commands", env=PASSWORD_ENV).stdout
    assert commands.splitlines()[-1] == "ACL SETUSER default reset off"
    env = {**PASSWORD_ENV, "MLOPS_REDIS_WORKER_PASSWORD": ""}
    result = cli("redis", "acl", env=env, expect=1)
    assert result.stderr.startswith("error: MLOPS_REDIS_WORKER_PASSWORD: not set")
    assert "Traceback" not in result.stderr


def test_the_embedded_redis_enforces_the_roles_when_asked(tmp_path: Path) -> None:
    """MLOPS_REDIS_ACL=on: the embedded Redis starts with the roles' ACL file, each process
    logs in as its role, and settings that do not match the running server fail in one line."""

    env = {"MLOPS_DATA_DIR": str(tmp_path / "d"), "MLOPS_REDIS_ACL": "on", **PASSWORD_ENV}
    cli = Cli()
    # when: the operator starts it
    started = cli.json("redis", "start", "--json", env=env)
    try:
        # then: the ACL file holds the roles, owner-only and without a password
        assert started["acl"] is True
        assert started["url"] == f"unix://{tmp_path / 'd' / 'redis.sock'}"
        aclfile = tmp_path / "d" / "users.acl"
        assert aclfile.stat().st_mode & 0o777 == 0o600
        text = aclfile.read_text()
        assert [line.split()[1] for line in text.splitlines()] == ["default", *acl.ROLES]
        assert all(pw not in text + str(started) for pw in PASSWORDS.values())
        # and: each role logs in as itself; no login is refused
        settings = Settings.from_env(env)
        for role in acl.ROLES:
            client = connect(resolve_redis_url(settings, start=False, role=role))
            assert acl.whoami(client) == (role if role != acl.DETECTOR else None)
            assert client.ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(unix_socket_path=str(tmp_path / "d" / "redis.sock")).ping()
        detector = connect(resolve_redis_url(settings, start=False, role=acl.DETECTOR))
        with pytest.raises(redis.exceptions.NoPermissionError):
            detector.hset(keys.versions(MODEL), "9.9.9", "{}")
        cli("register-all-models", env=env)
        assert MODEL in {m["name"] for m in cli.json("list-models", "--json", env=env)["models"]}
        # when: a process's settings do not match the server, then one line says what to do
        mismatches = (
            ({"MLOPS_REDIS_ACL": "off"}, "requires a login: it was started with MLOPS_REDIS_ACL"),
            ({acl.PASSWORD_VARIABLES[acl.OPERATOR]: "wrong"}, "refused the operator's password"),
            ({acl.PASSWORD_VARIABLES[acl.OPERATOR]: ""}, "MLOPS_REDIS_OPERATOR_PASSWORD: not set"))
        for changed, expected in mismatches:
            result = cli("list-models", env={**env, **changed}, expect=1)
            assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
            assert all(pw not in result.stderr for pw in PASSWORDS.values())
    finally:
        stopped = cli.json("redis", "stop", "--json", env=env)
    assert stopped == {"stopped": True}
