"""The Lua scripts of ``mlops_tasks/lua/``, read from the package: every script Redis runs is a
file there, with its KEYS/ARGV contract written above the code."""

from __future__ import annotations

from functools import cache
from importlib import resources

# Libraries of functions, prepended to the scripts that call them.
LINEAR_HASH = "linear_hash.lua"
DEDUP = "dedup.lua"


@cache
def source(name: str, libs: tuple[str, ...] = ()) -> str:
    """The text of ``lua/<name>``, after the libraries ``libs`` (file names in ``lua/``)."""
    folder = resources.files("mlops_tasks").joinpath("lua")
    return "\n".join(folder.joinpath(f).read_text(encoding="utf-8") for f in (*libs, name))
