"""The distribution ships every package of the source tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """Given the package list of pyproject.toml (cli/, workers/ and beat/ are installed as
    sub-packages of mlops_tasks), then every folder of Python modules is in it: a new package
    left out would be missing from a built wheel while editable installs still find it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {f"mlops_tasks.{top}": top for top in ("cli", "workers", "beat")}
    found = set()
    for init in (ROOT / "mlops_tasks").rglob("*.py"):
        found.add(".".join(init.parent.relative_to(ROOT).parts))
    for name, top in mapped.items():
        for module in (ROOT / top).rglob("*.py"):
            rest = module.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rest)))
    assert found - listed == set()
    assert listed - found == set()
