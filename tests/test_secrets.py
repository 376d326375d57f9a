"""Secrets stay secret: masked in every URL form, absent from what Celery and Flower report, and
never in a command's output, error line or traceback."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mlops_tasks import keys
from mlops_tasks.errors import ConfigError
from mlops_tasks.settings import Settings, check_env, describe, mask_secret, mask_url, url_origin

from .conftest import wait_for
from .processes import BeatProcess, MlopsProcess, WorkerProcess, project_env
from .redis_server import RedisServer, free_port
from .test_scheduler import COMPRESSED, leader, runs

# A password with the characters that break naive URL parsing; percent-encoded in the URL.
PASSWORD = "Zq81xMv#Kp42Lw/Hy7Rt?Ux93"  # noqa: S105 - made up, to find leaks of it


def leaks(text: str, secret: str) -> list[str]:
    """Every piece of ``secret`` (split at the characters that cut URLs apart, 4+ characters
    long) found in ``text``: an empty list means nothing of it leaked."""
    pieces = {secret, quote(secret, safe=""),
              *(p for p in re.split(r"[#/?&@:;=%]", secret) if len(p) >= 4)}
    return sorted(p for p in pieces if p in text)


# (URL, its secret, what the masked form is, or None to check only that nothing leaks)
MASKED = [
    ("redis://:s3cretpw@h:6379/0", "s3cretpw", "redis://:***@h:6379/0"),
    ("redis://user:s3cretpw@h/0", "s3cretpw", "redis://user:***@h/0"),
    ("redis://:Xa#Tq91zWe@host:6379/0", "Xa#Tq91zWe", "redis://:***@host:6379/0"),
    ("redis://:Kvx/Rp38mN@host", "Kvx/Rp38mN", "redis://:***@host"),
    ("redis://user:Lmq?Zc47hB@host", "Lmq?Zc47hB", "redis://user:***@host"),
    ("redis://user:Pq@Wd@k9Vz1@host/0", "Pq@Wd@k9Vz1", None),
    ("redis://h:6379/0?password=hunter22", "hunter22", "redis://h:6379/0?password=***"),
    ("redis://h/0?db=1&PASS=hunter22&x=1", "hunter22", "redis://h/0?db=1&PASS=***&x=1"),
    ("redis://h/0?password=hunt&er22#x", "hunt&er22#x", "redis://h/0?password=***"),
    ("rediss://default:tls-secret9@h:6380/0?ssl_cert_reqs=required", "tls-secret9",
     "rediss://default:***@h:6380/0?ssl_cert_reqs=required"),
    ("rediss://h:6380/0?password=tls-secret9", "tls-secret9", "rediss://h:6380/0?password=***"),
    ("unix://:sockpass9@/run/redis.sock?db=0", "sockpass9", "unix://:***@/run/redis.sock?db=0"),
    ("unix:///run/redis.sock?password=sockpass9", "sockpass9",
     "unix:///run/redis.sock?password=***"),
    ("redis+socket:///run/redis.sock?password=sockpass9", "sockpass9", None),
    ("sentinel://:sentinel9@h1:26379;sentinel://:sentinel9@h2:26379/0", "sentinel9",
     "sentinel://:***@h1:26379;sentinel://:***@h2:26379/0"),
    ("sentinel://:sentinel9@h1:26379,h2:26379/0", "sentinel9",
     "sentinel://:***@h1:26379,h2:26379/0"),
    ("redis://loneuser9@h/0", "loneuser9", "redis://***@h/0"),  # often a password by mistake
    ("redis://:nohost99", "nohost99", "redis://***"),
    ("redis://:pw4secret@h:abc/0", "pw4secret", "redis://***"),
    ("redis://h:abc/0", "abc/0", "redis://***"),
    ("http://[bad/token123", "token123", "http://***"),
    ("not a url s3cretpw", "s3cretpw", "***"),
    ("redis://h:6379/0", "", "redis://h:6379/0"),
    ("redis://[::1]:6379/0", "", "redis://[::1]:6379/0"),
]


@pytest.mark.parametrize(("url", "secret", "expected"), MASKED)
def test_mask_url_hides_every_credential_form(url: str, secret: str,
                                              expected: str | None) -> None:
    """Given a URL with a password in any form, then its masked form holds none of it, and a
    URL that cannot be parsed is hidden whole."""
    masked = mask_url(url)
    if secret:
        assert leaks(masked, secret) == [], masked
    if expected is not None:
        assert masked == expected


@pytest.mark.parametrize(("url", "origin"), [
    ("https://hooks.example.com/services/T0/B0/token123", "https://hooks.example.com"),
    ("http://127.0.0.1:8080/hook/token123?key=abc", "http://127.0.0.1:8080"),
    ("https://user:token123@hooks.example.com/x", "https://hooks.example.com"),
    ("http://[bad/token123", "http://?"),
    ("http://host:port/token123", "http://?"),
    ("http://h/x?to=a@token123", "http://?"),
    ("token123", "?"),
])
def test_url_origin_shows_scheme_and_host_only(url: str, origin: str) -> None:
    assert url_origin(url) == origin
    assert "token123" not in url_origin(url)


@pytest.mark.parametrize("value", [
    "redis://:Xa#Tq91zWe@host:6379/0", "redis://:Kvx/Rp38mN@host", "redis://user:Lmq?Zc47hB@host",
    "redis://h:abc/0", "redis://:pw4secret@h:99999/0", "redis://[::1/0",
])
def test_a_url_that_would_be_cut_apart_is_refused_in_one_masked_line(value: str) -> None:
    """An unencoded # / ? in a password, or a port that is not a number, is a configuration
    error naming the variable, masked, with the hint to percent-encode."""
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"REDIS_URL": value})
    message = str(err.value)
    assert message.startswith("REDIS_URL='") and "\n" not in message
    assert "percent-encode" in message
    for secret in ("Xa#Tq91zWe", "Kvx/Rp38mN", "Lmq?Zc47hB", "pw4secret"):
        assert leaks(message, secret) == []


def test_a_percent_encoded_password_is_accepted() -> None:
    url = "redis://:Zq81xMv%23Kp42Lw%2FHy7Rt%3FUx93@h:6379/0"
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url
    assert mask_url(url) == "redis://:***@h:6379/0"


def test_describe_and_check_env_never_raise_and_never_show_a_secret() -> None:
    env = {"REDIS_URL": "redis://:pw4secret@h:abc/0",
           "CELERY_BROKER_URL": "redis://h/0?password=hunter22",
           "MLOPS_WEBHOOK_URLS": "http://[bad/token123,https://hooks.example.com/T/token456",
           "MLOPS_WEBHOOK_SECRET": "hmac-key-9", "MLOPS_FLOWER_BASIC_AUTH": "ops:flower-pw9"}
    settings, problems = check_env(env)
    shown = json.dumps(describe(settings, env)) + json.dumps(problems)
    for secret in ("pw4secret", "hunter22", "token123", "token456", "hmac-key-9",
                   "flower-pw9"):
        assert leaks(shown, secret) == [], secret
    assert mask_secret("MLOPS_WEBHOOK_URLS", env["MLOPS_WEBHOOK_URLS"]) == \
        "http://?/***,https://hooks.example.com/***"


CONFIG_VALUES = [
    ("REDIS_URL", "redis://:Xa#Tq91zWe@host:6379/0", "Xa#Tq91zWe"),
    ("REDIS_URL", "redis://:Kvx/Rp38mN@host", "Kvx/Rp38mN"),
    ("REDIS_URL", "redis://user:Lmq?Zc47hB@host", "Lmq?Zc47hB"),
    ("REDIS_URL", "redis://127.0.0.1:1/0?password=hunter22", "hunter22"),
    ("REDIS_URL", "redis://:pw4secret@h:abc/0", "pw4secret"),
    ("REDIS_URL", "redis://h:abc/0", ""),
    ("CELERY_BROKER_URL", "rediss://:tls-secret9@h:6380/0?password=tls-secret9", "tls-secret9"),
    ("MLOPS_WEBHOOK_URLS", "http://[bad/token123", "token123"),
]


@pytest.mark.parametrize(("name", "value", "secret"), CONFIG_VALUES)
def test_config_check_shows_no_secret_and_no_traceback(cli, monkeypatch, name: str,
                                                       value: str, secret: str) -> None:
    """Given a secret setting in any form, valid or not, then `mlops config check`, as JSON and
    as a table, prints neither the secret nor a traceback."""
    monkeypatch.setenv(name, value)
    as_json = cli("config", "check", "--json", expect=None)
    human = cli("config", "check", expect=None)
    for result in (as_json, human):
        assert result.exit_code in (0, 1)
        out = result.stdout + result.stderr
        assert "Traceback" not in out
        if secret:
            assert leaks(out, secret) == [], out
    doc = json.loads(as_json.stdout)
    row = next(r for r in doc["settings"] if r["variable"] == name)
    if row["problem"]:
        assert row["problem"].startswith(f"{name}=") and "\n" not in row["problem"]


def mlops(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", *args],
                          env=project_env(url, **env), capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("template", [
    "redis://:{pw}@127.0.0.1:{port}/0",
    "redis://127.0.0.1:{port}/0?password={pw}",
    "rediss://user:{pw}@127.0.0.1:{port}/0",
])
def test_cache_health_on_an_unreachable_passworded_redis_is_one_line(tmp_path: Path,
                                                                     template: str) -> None:
    """Given REDIS_URL with a password and nothing listening, then `mlops cache health` exits
    1 with one error line naming the masked URL, and no password."""
    url = template.format(pw=quote(PASSWORD, safe=""), port=free_port())
    result = mlops(url, "cache", "health", MLOPS_DATA_DIR=str(tmp_path))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: Redis at ") and "unreachable" in lines[0]
    assert "***" in lines[0]
    assert leaks(result.stderr, PASSWORD) == []


# --- a passworded Redis, a real worker, Flower and beat -------------------------------------

@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Any]]:
    """A redis-server with requirepass and a worker process whose REDIS_URL carries it."""
    folder = tmp_path_factory.mktemp("secured")
    server = RedisServer(folder / "redis", password=PASSWORD).start()
    worker = WorkerProcess(server.url, folder, "--concurrency", "1",
                           MLOPS_DATA_DIR=str(folder / "data"), **COMPRESSED)
    try:
        worker.start()
        yield server, worker
    finally:
        worker.stop()
        server.stop()


@pytest.mark.slow
def test_celery_inspect_conf_shows_no_redis_password(secured) -> None:
    """Given a worker on a passworded Redis, when anyone with broker access asks for its
    configuration, then the answer holds beat's (masked) Redis URL but not the password."""
    server, worker = secured
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "mlops_tasks.workers.app", "inspect", "conf",
         "--json", "--timeout", "5"],
        env=project_env(server.url), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    replies = json.loads(result.stdout)
    [conf] = replies.values()
    assert conf["redbeat_redis_url"] == f"redis://:***@127.0.0.1:{server.port}/0"
    assert leaks(result.stdout + result.stderr, PASSWORD) == []
    assert leaks(worker.log(), PASSWORD) == []


class FlowerProcess(MlopsProcess):
    command = "flower"


@pytest.mark.slow
def test_flower_api_workers_shows_no_redis_password(secured, tmp_path: Path) -> None:
    """Given `mlops flower` on the passworded Redis, then /api/workers (with basic auth) shows
    the worker and its configuration, without the password."""
    server, _ = secured
    port = free_port()
    flower = FlowerProcess(server.url, tmp_path, "--port", str(port),
                           MLOPS_FLOWER_BASIC_AUTH="ops:flower-pw9",
                           MLOPS_DATA_DIR=str(tmp_path / "data"))
    flower.spawn()
    auth = "Basic " + base64.b64encode(b"ops:flower-pw9").decode()

    def workers() -> str | None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/workers?refresh=1",
                                         headers={"Authorization": auth})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http
                body = response.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        return body if '"redbeat_redis_url"' in body else None

    try:
        body = wait_for(workers, timeout=60, interval=0.5, what="Flower to list the worker")
        assert leaks(body, PASSWORD) == []
        assert leaks(flower.log(), PASSWORD) == []
        with pytest.raises(urllib.error.HTTPError) as denied:  # and never without auth
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workers", timeout=10)
        assert denied.value.code == 401
    finally:
        flower.stop()


@pytest.mark.slow
def test_beat_leads_and_schedules_on_a_passworded_redis(secured, tmp_path: Path) -> None:
    """Given beat on a passworded Redis (its lock's URL masked in the conf), then it takes
    redbeat's lock, heartbeats as leader and jobs run; its log holds no password."""
    server, worker = secured
    client = server.client()
    beat = BeatProcess(server.url, tmp_path, MLOPS_DATA_DIR=str(tmp_path / "data"),
                       **COMPRESSED).start()
    try:
        wait_for(lambda: leader(client), timeout=30, what="beat to lead")
        assert client.exists(keys.REDBEAT_PREFIX + "lock")
        before = runs(client, "ml-performance-monitoring")
        started = time.monotonic()
        wait_for(lambda: runs(client, "ml-performance-monitoring") > before, timeout=30,
                 what="a scheduled run")
        assert time.monotonic() - started < 30
        assert leaks(beat.log(), PASSWORD) == []
        assert leaks(worker.log(), PASSWORD) == []
    finally:
        beat.stop()


@pytest.mark.slow
def test_a_password_given_as_a_query_parameter_works_and_stays_hidden(tmp_path: Path) -> None:
    """Given REDIS_URL with the password as ``?password=`` (which Celery's URL masking leaves
    alone), when a worker runs on it, then the broker and result backend connect, ingest works,
    and `celery inspect conf` shows the URLs without the password and the password settings
    masked."""
    import redis

    from mlops_tasks.client import MonitoringClient
    from mlops_tasks.windows import WindowReader

    server = RedisServer(tmp_path / "redis", password=PASSWORD).start()
    url = f"redis://127.0.0.1:{server.port}/0?password={quote(PASSWORD, safe='')}"
    worker = WorkerProcess(url, tmp_path, "--concurrency", "1",
                           MLOPS_DATA_DIR=str(tmp_path / "data"))
    try:
        worker.start()
        settings = Settings.from_env({"REDIS_URL": url})
        store = redis.Redis.from_url(url)
        wait_for(lambda: store.sismember(keys.MODELS, "n1-detector"),
                 what="the worker registering the catalogue")
        with MonitoringClient(url, redis_url=url, settings=settings) as client:
            client.record_prediction("n1-detector", 0.9, actual=True)
            assert client.flush(20)
        reader = WindowReader(store, settings)
        wait_for(lambda: reader.totals("n1-detector", "1.0.0").get("n") == 1,
                 what="the event ingested")
        result = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "mlops_tasks.workers.app", "inspect", "conf",
             "--json", "--timeout", "5"],
            env=project_env(url), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        [conf] = json.loads(result.stdout).values()
        assert conf["result_backend"] == f"redis://127.0.0.1:{server.port}/0"
        assert conf["broker_password"] == conf["redis_password"] == "********"  # noqa: S105 - mask
        assert leaks(result.stdout + result.stderr, PASSWORD) == []
        assert leaks(worker.log(), PASSWORD) == []
    finally:
        worker.stop()
        server.stop()
