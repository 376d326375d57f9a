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


# --- Celery, through the fixtures of celery.contrib.pytest (loaded by the pytest-celery plugin) --
# The plugin's `celery_session_worker` runs the workers' real app in this process; the plugin's
# `celery_app` is a fresh app per test, configured like a worker's, for sending tasks. (The
# plugin's `celery_worker` is pytest-celery's Docker-based one: not used here.)


@pytest.fixture(scope="session")
def session_settings(redis_server: RedisServer,
                     tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """What the session's worker runs with: the session's Redis and nothing of the machine's."""
    return Settings.from_env({"REDIS_URL": redis_server.url,
                              "MLOPS_DATA_DIR": str(tmp_path_factory.mktemp("worker"))})


@pytest.fixture(scope="session")
def celery_config(session_settings: Settings) -> dict[str, Any]:
    """The workers' own configuration, for the session's Redis."""
    from mlops_tasks.celery_config import worker_config

    url = session_settings.redis_url
    assert url is not None
    return worker_config(session_settings, url, url)


@pytest.fixture(scope="session")
def celery_session_app(celery_config: dict[str, Any], session_settings: Settings) -> Any:
    """The workers' app (not a test app: the job table and the ingest tasks are registered on
    it), configured from the environment as in production, for the session's Redis. Its
    runtime is pinned to the session's Redis, so a task that runs between tests (a label retry,
    a webhook) never reads a test's environment."""
    from mlops_tasks.workers import runtime
    from mlops_tasks.workers.app import app

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name in known_variables() or name.startswith(ENV_PREFIX):
                mp.delenv(name)
        mp.setenv("REDIS_URL", str(session_settings.redis_url))
        assert app.conf.broker_url == celery_config["broker_url"]
        app.conf.update(celery_config)
        app.loader.import_default_modules()
        app.finalize()
    runtime._runtime = (os.getpid(), runtime.Runtime(session_settings))
    return app


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    return "threads"


@pytest.fixture(scope="session")
def celery_worker_parameters() -> dict[str, Any]:
    """Two threads, consuming every queue (the app's task_queues: no -Q needed)."""
    return {"concurrency": 2, "perform_ping_check": False, "loglevel": "WARNING",
            "shutdown_timeout": 30}


@pytest.fixture
def worker(celery_session_worker: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The session worker, with a fresh per-test runtime (settings read from this test's env)."""
    from mlops_tasks.workers import runtime

    # built from this test's environment at the first task; the pinned one is back afterwards
    monkeypatch.setattr(runtime, "_runtime", None)
    return celery_session_worker


@pytest.fixture
def pipe(redis_url: str) -> Any:
    """Real services on a fake clock, with the catalogue registered (see pipeline_support)."""
    from .pipeline_support import Pipeline

    return Pipeline(redis_url)


@pytest.fixture
def ingestor(registry: Registry, raw: redis.Redis) -> Any:
    """The worker's ingest pipeline on the test's Redis, the catalogue registered, no cache."""
    from mlops_tasks.ingest.pipeline import Ingestor

    from .test_registry import register_catalogue

    register_catalogue(registry)
    return Ingestor(registry.settings, registry, raw, cache_ttl_s=0)


@pytest.fixture
def reader(registry: Registry, raw: redis.Redis) -> Any:
    """The windows of the aggregates on the test's Redis."""
    from mlops_tasks.windows import WindowReader

    return WindowReader(raw, registry.settings)


@pytest.fixture
def serve(redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """A factory of `mlops serve` processes (on a free port), stopped after the test."""
    from .processes import ServeProcess
    from .redis_server import free_port

    started: list[ServeProcess] = []

    def start(url: str = redis_url, **env: str) -> ServeProcess:
        proc = ServeProcess(url, tmp_path, "--port", str(port := free_port()), **env)
        started.append(proc)
        return proc.start(port)

    yield start
    for proc in started:
        proc.stop()
