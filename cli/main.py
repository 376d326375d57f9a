"""Entry point of the ``mlops`` command: the root group and one-line error handling."""

from __future__ import annotations

import sys
from typing import Any

import click
import redis
from kombu.exceptions import OperationalError

from mlops_tasks import __version__
from mlops_tasks.errors import MlopsError, RedisUnavailableError
from mlops_tasks.settings import mask_url

from . import (
    alert_cmds,
    demo_cmds,
    deploy_cmds,
    flower_cmds,
    monitoring_cmds,
    performance_cmds,
    registry_cmds,
    run_cmds,
    scheduler_cmds,
    system_cmds,
    tuning_cmds,
    verify_cmds,
    worker_cmds,
)
from .context import EXIT_FAILURE, App
from .output import safe


class MlopsGroup(click.Group):
    """Turns every expected error into ``error: <one line>`` on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            _fail(str(exc))
        except OperationalError as exc:  # kombu: the broker is unreachable
            _fail(f"broker unreachable: {str(exc).splitlines()[0]}")
        except redis.RedisError as exc:
            app = ctx.find_object(App)
            where = mask_url(app._url) if app and app._url else "Redis"
            _fail(str(RedisUnavailableError(f"{where}: {str(exc).splitlines()[0]}")))


def _fail(message: str) -> None:
    click.echo(f"error: {safe(message)}", err=True)
    sys.exit(EXIT_FAILURE)


@click.group(cls=MlopsGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
@click.version_option(__version__, prog_name="mlops")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Monitor, alert on and auto-tune ML detectors in production.

    Settings come from the environment (see `mlops config check`). Without REDIS_URL an
    embedded Redis is started in MLOPS_DATA_DIR and reused by later commands.
    """
    ctx.ensure_object(App)


for module in (registry_cmds, deploy_cmds, performance_cmds, monitoring_cmds, alert_cmds,
               tuning_cmds, run_cmds, scheduler_cmds, verify_cmds, worker_cmds, flower_cmds, demo_cmds,
               system_cmds):
    module.register(cli)


def main() -> None:
    cli(prog_name="mlops")


if __name__ == "__main__":
    main()
