"""Redis over TLS (``rediss://``) with the roles' passwords: a real redis-server speaking only
TLS, its certificate from a throwaway CA; the CLI (operator), a worker process (worker) and the
thin client (detector) all work through it, and no password shows anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
import trustme

from mlops_tasks import acl, keys
from mlops_tasks.client import MonitoringClient
from mlops_tasks.settings import Settings

from .conftest import Cli, wait_for
from .processes import BeatProcess, WorkerProcess
from .redis_server import RedisServer, TlsFiles
from .test_scheduler import COMPRESSED, facts
from .test_up import command_lines

PASSWORDS = {role: f"tls-{role}-pw" for role in acl.ROLES}
PASSWORD_ENV = {acl.PASSWORD_VARIABLES[role]: pw for role, pw in PASSWORDS.items()}
MODEL = "n1-detector"


def tls_files(folder: Path, ca: trustme.CA) -> TlsFiles:
    folder.mkdir(parents=True, exist_ok=True)
    cert = ca.issue_cert("127.0.0.1")
    files = TlsFiles(folder / "server.pem", folder / "server.key", folder / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(files.cert))
    cert.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    return files


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server listening with TLS only, with the users of `mlops redis acl`."""
    aclfile = tmp_path / "users.acl"
    aclfile.write_text(Cli()("redis", "acl", env=PASSWORD_ENV).stdout)
    server = RedisServer(tmp_path / "redis", aclfile=aclfile, username="operator",
                         password=PASSWORDS["operator"],
                         tls=tls_files(tmp_path / "tls", trustme.CA())).start()
    yield server
    server.stop()


def test_every_role_works_over_tls_and_no_password_shows(tls_redis: RedisServer,
                                                         tmp_path: Path) -> None:
    # given: the operator registers the models over rediss://
    cli = Cli()
    operator_url = tls_redis.url
    assert operator_url.startswith("rediss://")
    cli("register-all-models", env={"REDIS_URL": operator_url})
    # when: a worker and beat (the worker's login) run and a detector sends through the client
    worker_url = tls_redis.url_as("worker", PASSWORDS["worker"])
    worker = WorkerProcess(worker_url, tmp_path, MLOPS_DATA_DIR=str(tmp_path / "w"),
                           **COMPRESSED).start()
    beat = BeatProcess(worker_url, tmp_path, MLOPS_DATA_DIR=str(tmp_path / "b"),
                       **COMPRESSED).start()
    try:
        detector_url = tls_redis.url_as("detector", PASSWORDS["detector"])
        settings = Settings.from_env({"REDIS_URL": detector_url})
        with MonitoringClient(redis_url=detector_url, settings=settings) as client:
            assert client.current_config(MODEL)["name"] == MODEL
            for i in range(50):
                client.record_prediction(MODEL, i / 50, actual=i % 2)
            assert client.flush(30)
        # then: the worker counts them and the operator reads them back
        op = tls_redis.client()
        wait_for(lambda: op.hget(keys.total(MODEL, "1.0.0"), "n") == "50")
        # and: beat schedules the monitoring job, which the worker runs without a failure
        wait_for(lambda: facts(op, "ml-performance-monitoring")["runs"] >= 1, timeout=60,
                 what="a scheduled monitoring run")
        assert facts(op, "ml-performance-monitoring")["consecutive_failures"] == 0
        # (which fills the read cache that the detector only reads)
        assert op.exists(keys.config_cache(MODEL, "latest")) == 1
        summary = cli.json("performance-summary", env={"REDIS_URL": operator_url})
        assert "Traceback" not in str(summary)
        config = cli("config", "check", "--json", env={"REDIS_URL": operator_url}).stdout
        cmdlines = command_lines()
    finally:
        beat.stop()
        worker.stop()
    assert op.acl_log() == [], "nothing was refused to any role"
    # and: no password in the worker's log, the CLI's output or any command line
    seen = worker.log() + beat.log() + config + str(summary)
    for pw in PASSWORDS.values():
        assert pw not in seen
        assert not [c for c in cmdlines if pw.encode() in c]


def test_an_untrusted_certificate_is_one_line_without_the_password(
        tls_redis: RedisServer, tmp_path: Path) -> None:
    """A server whose certificate the client's CA did not sign: a one-line error naming the
    masked URL and the failed verification; a plain redis:// client gets no answer."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    query = urlencode({"ssl_cert_reqs": "required", "ssl_ca_certs": str(other_ca)})
    url = tls_redis.url.partition("?")[0] + "?" + query
    result = Cli()("performance-summary", env={"REDIS_URL": url}, expect=1)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: Redis at rediss://operator:***@127.0.0.1:")
    assert "certificate verify failed" in result.stderr
    assert PASSWORDS["operator"] not in result.stdout + result.stderr
    plain = redis.Redis(port=tls_redis.port, username="operator",
                        password=PASSWORDS["operator"], socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()
