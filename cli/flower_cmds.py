"""`mlops flower`: Flower for the project's app, never without authentication."""

from __future__ import annotations

import os

import click

from mlops_tasks.errors import ConfigError

from .context import App, pass_app


@click.command("flower", context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def flower(app: App, address: str, port: int, flower_args: tuple[str, ...]) -> None:
    """Start Flower with HTTP basic authentication from MLOPS_FLOWER_BASIC_AUTH.

    The credentials go to Flower through its environment (FLOWER_BASIC_AUTH), not the command
    line, so they never show in the process list.
    """
    auth = app.settings.flower_basic_auth
    if not auth:
        raise ConfigError("MLOPS_FLOWER_BASIC_AUTH is not set: Flower never runs without "
                          "authentication (expected user:password pairs separated by commas)")
    os.environ["FLOWER_BASIC_AUTH"] = auth
    # an `mlops` command starts the embedded Redis when there is no REDIS_URL
    app.redis_url  # noqa: B018 - read for that side effect
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import

    celery_app.start(["flower", f"--address={address}", f"--port={port}", *flower_args])


def register(group: click.Group) -> None:
    group.add_command(flower)
