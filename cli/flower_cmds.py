"""`mlops flower`: Flower for the project's app, never without authentication."""

from __future__ import annotations

from typing import Any

import click

from mlops_tasks.flower_auth import run_flower

from .context import App, pass_app


@click.command("flower", context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})
@click.option("--address", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def flower(app: App, address: str, port: int, flower_args: tuple[str, ...]) -> None:
    """Start Flower with HTTP basic authentication from MLOPS_FLOWER_BASIC_AUTH.

    Every URL that shows data (pages, API, /metrics) answers 401 without the credentials; only
    static files and /healthcheck are open. The credentials go to Flower through its
    environment, not the command line, so they never show in the process list.
    """

    def load_celery_app() -> Any:
        # an `mlops` command starts the embedded Redis when there is no REDIS_URL
        app.redis_url  # noqa: B018 - read for that side effect
        from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import

        return celery_app

    run_flower(app.settings.flower_basic_auth, address=address, port=port,
               extra_args=flower_args, load_celery_app=load_celery_app)


def register(group: click.Group) -> None:
    group.add_command(flower)
