"""`mlops verify-systems`: one pass/fail line per part of the system."""

from __future__ import annotations

import sys

import click

from mlops_tasks.health import verify_systems as verify

from .context import EXIT_FAILURE, App, json_option, pass_app
from .output import emit


@click.command("verify-systems")
@click.option("--timeout", type=click.FloatRange(min=0.5), default=15.0, show_default=True,
              help="Seconds to wait for workers and for the probe event.")
@json_option
@pass_app
def verify_systems(app: App, timeout: float, as_json: bool) -> None:
    """Check Redis, the broker, each worker pool, beat, the registry catalogue and the metrics
    pipeline (a synthetic event through the real path); exit 1 if any check fails."""
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - Celery
    from mlops_tasks.workers.pools import POOLS  # noqa: PLC0415 - the workers' own table

    # the dedicated pools; "all" is served whenever they are
    pools = {name: pool.queues for name, pool in POOLS.items() if name != "all"}
    result = verify(app.services, app.redis_url, celery_app, pools, timeout)
    lines = "\n".join(f"{'PASS' if c.ok else 'FAIL'}  {c.name:<20} {c.detail}"
                      for c in result.checks)
    emit(as_json, result.to_dict(), lines)
    if not result.ok:
        sys.exit(EXIT_FAILURE)


def register(group: click.Group) -> None:
    group.add_command(verify_systems)
