"""`mlops up`: the whole stack on this machine (mlops_tasks/stack.py), until Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import sys
import time

import click

from mlops_tasks.errors import MlopsError
from mlops_tasks.stack import StackInfo, StackStatus
from mlops_tasks.timefmt import iso

from .context import App, json_option, pass_app
from .output import safe, table

WORKER_REPLY_S = 2.0  # longest wait for workers to say which queues they consume
LIVE_STATUS_S = 1.0  # the status line's refresh on a terminal
PLAIN_STATUS_S = 60.0  # a plain status line this often when stdout is not a terminal


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address serve and Flower bind.")
@click.option("--serve-port", type=click.IntRange(1, 65535), default=9808, show_default=True,
              help="Port of `mlops serve` (health and metrics).")
@click.option("--flower-port", type=click.IntRange(1, 65535), default=5555, show_default=True,
              help="Port of Flower.")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), metavar="N",
              help="Processes of each worker pool (default: per pool, from the number of cores).")
@click.option("--ready-timeout", "ready_timeout_s", type=click.IntRange(1, 3600), default=300,
              show_default=True, metavar="SECONDS",
              help="Stop the stack when it is not ready by then.")
@click.option("--demo", is_flag=True,
              help="Also run the demo tour (`mlops demo`) on a time-compressed schedule, and "
                   "keep the stack running after it.")
@json_option
@pass_app
def up(app: App, host: str, serve_port: int, flower_port: int, concurrency: int | None,
       ready_timeout_s: int, demo: bool, as_json: bool) -> None:
    """Start Redis, the worker pools, beat, Flower and serve here; Ctrl-C stops them all.

    Redis is REDIS_URL's, else the embedded one. Flower's credentials are generated unless
    MLOPS_FLOWER_BASIC_AUTH is set, and shown once, on the terminal (with --json: in the one
    JSON line printed at start). Each child's output goes to <MLOPS_LOG_DIR>/up/<child>.log.
    A second Ctrl-C stops without waiting. Exits 1 when a child dies or the stack is not ready
    in time, having stopped the rest.
    """
    if demo:
        from .demo_cmds import run_demo  # noqa: PLC0415 - on first use

        doc = run_demo(app, host=host, serve_port=serve_port, flower_port=flower_port,
                       rate=120.0, drift_at_s=45.0, timeout_s=3600.0, fixed_end=False,
                       as_json=as_json, ready_timeout_s=ready_timeout_s)
        if not as_json:
            click.echo(f"stopped after {len(doc['steps'])} demo step(s)")
        return
    from mlops_tasks.health import celery_active_queues  # noqa: PLC0415 - on first use
    from mlops_tasks.stack import StackOptions, run_stack  # noqa: PLC0415 - on first use
    from mlops_tasks.workers.app import app as celery_app  # noqa: PLC0415 - heavy import
    from mlops_tasks.workers.pools import POOLS  # noqa: PLC0415 - the workers' own table

    live = sys.stdout.isatty()
    view = JsonView() if as_json else TextView(live=live)
    pools = {name: pool.queues for name, pool in POOLS.items() if name != "all"}
    every = None if as_json else LIVE_STATUS_S if live else PLAIN_STATUS_S
    result = run_stack(app.settings, StackOptions(host, serve_port, flower_port, concurrency),
                       pools, view, active_queues=celery_active_queues(celery_app,
                                                                       WORKER_REPLY_S),
                       ready_timeout_s=ready_timeout_s, status_every_s=every)
    for line in result.log_tail:
        click.echo(f"  | {safe(line)}", err=True)
    if result.killed:
        click.echo(f"killed with SIGKILL: {', '.join(result.killed)}", err=True)
    if result.failure:
        raise MlopsError(result.failure)
    if not as_json:
        click.echo("stopped")


class JsonView:
    """One JSON line at start; nothing else on stdout."""

    def started(self, info: StackInfo) -> None:
        click.echo(json.dumps(info.to_dict()))

    def ready(self, after_s: float) -> None:
        pass

    def status(self, status: StackStatus) -> None:
        pass

    def stopping(self, signal_name: str | None) -> None:
        pass


class TextView:
    """The URLs and a table of children; then a status line, redrawn in place on a terminal.
    The password is printed only to a terminal: redirected output is a log."""

    def __init__(self, *, live: bool) -> None:
        self.live = live
        self.line_open = False

    def started(self, info: StackInfo) -> None:
        r, c = info.redis, info.credentials
        where = ("embedded, started here" if r.started_here
                 else "embedded" if r.embedded is not None else "REDIS_URL")
        if c.password is None:
            shown = "password: MLOPS_FLOWER_BASIC_AUTH's"
        elif self.live:
            shown = f"password {c.password}"
        else:
            shown = ("password not shown, stdout is not a terminal (use --json, or set "
                      "MLOPS_FLOWER_BASIC_AUTH)")
        click.echo(f"redis   {safe(info.redis.to_dict()['url'])} ({where})")
        click.echo(f"serve   {info.serve_url}/health  {info.serve_url}/metrics")
        click.echo(f"flower  {info.flower_url}  user {safe(c.user)}  {shown}")
        click.echo(table(["child", "pid", "log"],
                         [[ch.spec.name, ch.pid, str(ch.log_path)] for ch in info.children]))
        click.echo("waiting until the stack is ready; Ctrl-C stops it")

    def ready(self, after_s: float) -> None:
        click.echo(f"ready after {after_s:.0f} s")

    def status(self, status: StackStatus) -> None:
        line = status_line(status)
        if self.live:
            click.echo(f"\r\x1b[2K{line}", nl=False)
            self.line_open = True
        else:
            click.echo(line)

    def stopping(self, signal_name: str | None) -> None:
        if self.line_open:
            click.echo()
            self.line_open = False
        if signal_name:
            click.echo(f"{signal_name}: stopping the stack (Ctrl-C again: without waiting)")


def status_line(s: StackStatus) -> str:
    stamp = iso(time.time())
    if s.error:
        return f"{stamp}  Redis unreadable: {safe(s.error)}"
    rate = "-" if s.events_per_s is None else f"{s.events_per_s:.1f}"
    unacked = "-" if s.unacked is None else s.unacked
    return (f"{stamp}  events/s {rate}  queued {s.queued} (unacked {unacked})  "
            f"alerts firing {s.alerts_firing}")


def register(group: click.Group) -> None:
    group.add_command(up)
