"""`mlops serve`: the health and metrics HTTP service."""

from __future__ import annotations

import click

from .context import App, pass_app

WORKER_REPLY_S = 2.0  # longest wait for workers to say which queues they consume


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=9808, show_default=True)
@pass_app
def serve(app: App, host: str, port: int) -> None:
    """Serve /health/live, /health/ready, /health, /health/<component>, /metrics and the
    dashboard page / (?span=day|week|month).

    The page, /metrics and the detailed /health need MLOPS_SERVE_BASIC_AUTH's credentials when
    it is set; /health/live and /health/ready stay open for orchestrators' probes.
    """
    from mlops_tasks.health import celery_active_queues  # noqa: PLC0415 - on first use
    from mlops_tasks.server import serve as run  # noqa: PLC0415 - Tornado, on first use
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import
    from mlops_tasks.workers.pools import POOLS  # noqa: PLC0415 - the workers' own table

    app.log_to_stderr()  # MLOPS_LOG_STRATEGY, like the workers and beat
    # the dedicated pools; "all" is served whenever they are
    pools = {name: pool.queues for name, pool in POOLS.items() if name != "all"}
    run(app.settings, app.redis_url, host, port, pools=pools,
        active_queues=celery_active_queues(celery_app, WORKER_REPLY_S))


def register(group: click.Group) -> None:
    group.add_command(serve)
