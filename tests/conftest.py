"""Shared fixtures: a real Redis server for the whole session, a clean keyspace per test, and an
environment holding none of the operator's own settings."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from mlops_tasks.registry import Registry
from mlops_tasks.settings import ENV_PREFIX, Settings, known_variables

from .redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=True).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the machine running the tests."""
    for name in list(os.environ):
        if name in known_variables() or name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))


def clear_project_keys(client: redis.Redis) -> None:
    """Delete every key of the project, but not the broker's queues and bindings."""
    batch = list(client.scan_iter("mlops:*", count=1000))
    for i in range(0, len(batch), 1000):
        client.delete(*batch[i:i + 1000])


@pytest.fixture
def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    clear_project_keys(redis_server.client())
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    return redis_server.url


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.from_env()


@pytest.fixture
def registry(r: redis.Redis, settings: Settings) -> Registry:
    return Registry(r, settings)


class Cli:
    """Runs `mlops` in-process, like a user would from the shell."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 expect: int | None = 0) -> Result:
        from mlops_tasks.cli.main import cli

        result = self.runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, (
                f"mlops {' '.join(args)} exited {result.exit_code}, expected {expect}:\n"
                f"{result.output}{result.stderr}")
        return result

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self(*args, "--json", env=env).stdout)


@pytest.fixture
def cli(redis_url: str) -> Cli:
    return Cli()


@pytest.fixture
def raw(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def celery_app(redis_server: RedisServer) -> Any:
    """The workers' Celery app, configured for the session's Redis."""
    from mlops_tasks.workers.app import app

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name in known_variables() or name.startswith(ENV_PREFIX):
                mp.delenv(name)
        mp.setenv("REDIS_URL", redis_server.url)
        assert app.conf.broker_url == redis_server.url
        app.loader.import_default_modules()
        app.finalize()
    return app


@pytest.fixture(scope="session")
def celery_worker(celery_app: Any, redis_server: RedisServer,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Celery worker, in this process (threads pool), consuming every queue. Between
    tests its runtime stays pinned to the session's Redis, so a late task (a label retry, a
    webhook) never reads a test's environment."""
    from celery.contrib.testing.worker import start_worker
    from mlops_tasks.workers import runtime

    from mlops_tasks.queues import ALL_QUEUES

    pinned = Settings.from_env({"REDIS_URL": redis_server.url,
                                "MLOPS_DATA_DIR": str(tmp_path_factory.mktemp("worker"))})
    runtime._runtime = (os.getpid(), runtime.Runtime(pinned))
    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False,
                      loglevel="WARNING", queues=list(ALL_QUEUES),
                      shutdown_timeout=30) as worker:
        yield worker


@pytest.fixture
def worker(celery_worker: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The session worker, with a fresh per-test runtime (settings read from this test's env)."""
    from mlops_tasks.workers import runtime

    # built from this test's environment at the first task; the pinned one is back afterwards
    monkeypatch.setattr(runtime, "_runtime", None)
    return celery_worker


@pytest.fixture
def pipe(redis_url: str) -> Any:
    """Real services on a fake clock, with the catalogue registered (see pipeline_support)."""
    from .pipeline_support import Pipeline

    return Pipeline(redis_url)
