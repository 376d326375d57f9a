"""Entry point of the ``mlops`` command: the root group, lazy command loading and one-line
error handling.

A command's module is imported only when that command runs (or when ``--help`` lists them), so
``mlops --version`` and a simple command start without loading what other commands need.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from mlops_tasks import __version__
from mlops_tasks.errors import MlopsError, RedisUnavailableError

from .context import EXIT_FAILURE, App
from .output import safe

# Every command, and the module of cli/ whose register() adds it. A new command is a function in
# its module plus one line here (tests/test_cli_startup.py checks the two agree).
COMMANDS: dict[str, str] = {
    **dict.fromkeys(["register-model", "register-all-models", "list-models", "show-config",
                     "show-thresholds", "update-config", "update-threshold", "rollback-config",
                     "config-drift-report", "audit-log"], "registry_cmds"),
    **dict.fromkeys(["deploy", "deploy-to-production", "deployment-status",
                     "list-production-models", "rollback", "rollback-version"], "deploy_cmds"),
    **dict.fromkeys(["performance-summary", "performance-details", "data-sufficiency",
                     "validate-ground-truth", "analyze-errors", "dead-letters"],
                    "performance_cmds"),
    **dict.fromkeys(["check-degradation", "verify-degradation", "set-baseline",
                     "degradation-report", "daily-summary", "performance-trends",
                     "compare-versions"], "monitoring_cmds"),
    **dict.fromkeys(["alerts", "silence", "silences", "unsilence", "notifications"],
                    "alert_cmds"),
    **dict.fromkeys(["auto-tuning-history", "auto-tuning-report",
                     "improvement-recommendations"], "tuning_cmds"),
    "run": "run_cmds",
    **dict.fromkeys(["scheduler", "cleanup-old-data"], "scheduler_cmds"),
    "verify-systems": "verify_cmds",
    **dict.fromkeys(["worker", "beat"], "worker_cmds"),
    "flower": "flower_cmds",
    "demo": "demo_cmds",
    **dict.fromkeys(["cache", "config", "redis"], "system_cmds"),
}


def module_commands(module: str) -> dict[str, click.Command]:
    """The commands a cli/ module registers."""
    group = click.Group()
    importlib.import_module(f"{__package__}.{module}").register(group)
    return dict(group.commands)


class MlopsGroup(click.Group):
    """Loads command modules on demand; turns every expected error into ``error: <one line>``
    on stderr and exit code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        return None if module is None else module_commands(module).get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            _fail(str(exc))
        except Exception as exc:
            message = _connection_error(ctx, exc)
            if message is None:
                raise
            _fail(message)


def _connection_error(ctx: click.Context, exc: Exception) -> str | None:
    """One line for a broker or Redis failure; None for anything else. Checked by module, so
    neither kombu nor redis is imported for commands that never load them."""
    kombu_errors = sys.modules.get("kombu.exceptions")
    if kombu_errors is not None and isinstance(exc, kombu_errors.OperationalError):
        return f"broker unreachable: {str(exc).splitlines()[0]}"
    redis_errors = sys.modules.get("redis.exceptions")
    if redis_errors is not None and isinstance(exc, redis_errors.RedisError):
        from mlops_tasks.settings import mask_url  # noqa: PLC0415 - only on failure

        app = ctx.find_object(App)
        where = mask_url(app._url) if app and app._url else "Redis"
        return str(RedisUnavailableError(f"{where}: {str(exc).splitlines()[0]}"))
    return None


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


def main() -> None:
    cli(prog_name="mlops")


if __name__ == "__main__":
    main()
