"""What every command shares: settings, the connected services, common options."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mlops_tasks.settings import Settings

if TYPE_CHECKING:  # imported when first used: a command that needs no Redis loads none of it
    from redis import Redis

    from mlops_tasks.registry import Registry
    from mlops_tasks.services import Services
    from mlops_tasks.windows import WindowReader

EXIT_OK = 0
EXIT_FAILURE = 1  # an error, a failed check, or a problem found
EXIT_USAGE = 2  # click's own code for a bad option or argument


class App:
    """Built lazily so ``mlops --help`` and ``mlops config check`` work with bad settings."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._url: str | None = None
        self._services: Services | None = None
        self._registry: Registry | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    @property
    def redis_url(self) -> str:
        if self._url is None:
            from mlops_tasks.connection import resolve_redis_url  # noqa: PLC0415 - first use
            from mlops_tasks.roles import OPERATOR  # noqa: PLC0415 - with the above

            self._url = resolve_redis_url(self.settings, role=OPERATOR)
        return self._url

    @property
    def resolved_redis_url(self) -> str | None:
        """The Redis URL if a command resolved it already; never starts the embedded Redis."""
        return self._url

    @property
    def services(self) -> Services:
        if self._services is None:
            from mlops_tasks.services import Services  # noqa: PLC0415 - numpy, on first use
            from mlops_tasks.workers.runtime import send_webhook  # noqa: PLC0415 - Celery

            self._services = Services.connect(self.settings, self.redis_url,
                                              dispatch=send_webhook)
        return self._services

    @property
    def redis(self) -> Redis:
        return self.services.redis

    @property
    def raw(self) -> Redis:
        """A client for binary values (histograms, packed records)."""
        return self.services.raw

    @property
    def registry(self) -> Registry:
        """The registry alone, when nothing else was needed yet (no numpy, no alerting)."""
        if self._services is not None:
            return self._services.registry
        if self._registry is None:
            from mlops_tasks.connection import call, connect  # noqa: PLC0415 - redis-py
            from mlops_tasks.registry import Registry  # noqa: PLC0415 - on first use

            client = connect(self.redis_url)
            call(self.redis_url, client.ping)
            self._registry = Registry(client, self.settings)
        return self._registry

    @property
    def windows(self) -> WindowReader:
        return self.services.windows

    def plain_redis(self) -> Redis:
        """A bare connection (no Celery), for health checks."""
        from mlops_tasks.connection import call, connect  # noqa: PLC0415 - redis-py

        client = connect(self.redis_url)
        call(self.redis_url, client.ping)
        return client

    def log_to_stderr(self) -> None:
        """For commands that run a job here: its log lines and alerts go where
        MLOPS_LOG_STRATEGY says, as in the workers (stderr unless a file or syslog strategy)."""
        from mlops_tasks.logs import configure_logging  # noqa: PLC0415 - on first use

        configure_logging(self.settings)

    def actor(self, given: str | None) -> str:
        return given or self.settings.actor or getpass.getuser()


pass_app = click.make_pass_decorator(App, ensure=True)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print a JSON document instead of a table.")(fn)


def change_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--actor`` and ``--approved-by`` for every command that changes the registry."""
    fn = click.option("--approved-by", metavar="NAME",
                      help="Approver of a production change (needed with "
                           "MLOPS_REQUIRE_APPROVAL=true; must differ from the actor).")(fn)
    return click.option("--actor", metavar="NAME",
                        help="Who makes the change (default: MLOPS_ACTOR, else the OS user).")(fn)


def period_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--last-week`` (the default) or ``--since 30d``, as the ``period`` argument."""
    fn = click.option("--since", "period", help="Another period, e.g. 30d.")(fn)
    return click.option("--last-week", "period", flag_value="7d", default=True,
                        help="The last 7 days (default).")(fn)
