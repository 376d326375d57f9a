"""Shared fixtures: a real Redis server for the whole session, a clean keyspace per test, and an
environment holding none of the operator's own settings."""

from __future__ import annotations

import json
import os
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


@pytest.fixture
def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    redis_server.client().flushall()
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
