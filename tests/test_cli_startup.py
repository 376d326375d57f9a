"""The `mlops` command loads only what the command it runs needs."""

from __future__ import annotations

import json
import subprocess
import sys

from mlops_tasks.cli.main import COMMANDS, module_commands

HEAVY = ("numpy", "scipy", "celery", "kombu")


def test_the_command_table_names_every_command_of_every_module() -> None:
    """Given the table of commands and the modules it names, then each module registers exactly
    the commands the table gives it: a command added to a module without its line in the table
    (or the other way round) fails here."""
    by_module: dict[str, set[str]] = {}
    for name, (module, _) in COMMANDS.items():
        by_module.setdefault(module, set()).add(name)
    for module, names in by_module.items():
        commands = module_commands(module)
        assert set(commands) == names, module
        for name in names:
            assert commands[name].get_short_help_str(limit=1000) == COMMANDS[name][1], name


def test_help_lists_every_command_without_loading_one() -> None:
    """Given `mlops --help`, then every command is listed with its help, and no heavy library
    (nor any command module) is imported."""
    assert _loaded("--help") == []
    done = subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in done.stdout, name


def _loaded(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """Heavy modules imported by running `mlops ARGS` in a fresh interpreter."""
    code = ("import sys, json\n"
            "from mlops_tasks.cli.main import cli\n"
            "try:\n"
            f"    cli({list(args)!r}, prog_name='mlops')\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_version_loads_no_heavy_library() -> None:
    """Given `mlops --version`, then neither numpy, scipy, celery nor kombu is imported."""
    assert _loaded("--version") == []


def test_list_models_loads_no_heavy_library(redis_url: str, registry) -> None:
    """Given a registry, when `mlops list-models --json` runs, then it reads the registry
    without importing numpy, scipy, celery or kombu."""
    import os

    env = {**os.environ, "REDIS_URL": redis_url}
    assert _loaded("list-models", "--json", env=env) == []
