"""Model definition files (``register-model --config FILE``): read with a bound, parsed safely.

A file is JSON when its name ends in ``.json``, else YAML, and holds either
``{name?, version?, display_name?, description?, config}`` or the bare config object.

What a hostile file cannot do:
- make the reader run forever or fill memory: at most ``MAX_CONFIG_FILE_BYTES`` are read;
- expand: YAML anchors and aliases (``&a`` / ``*a``, the "billion laughs" bomb) are refused
  before anything is built, so what is parsed is never larger than the file;
- recurse: more than ``MAX_NESTING`` levels of objects and lists are refused;
- flood the terminal: errors quote at most a short, escaped prefix of what they refuse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ValidationError
from . import semver
from .config import validate_model_name
from .limits import MAX_CONFIG_FILE_BYTES, MAX_NESTING, check_nesting, quote, shorten

FILE_FIELDS = ("name", "version", "display_name", "description", "config")

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


@dataclass(frozen=True)
class ModelFile:
    """What a model definition file says; ``None`` where it says nothing."""

    config: dict[str, Any]
    name: str | None = None
    version: str | None = None
    display_name: str | None = None
    description: str | None = None


def _where(path: Path) -> str:
    return f"--config {shorten(path, 200)}"


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_FILE_BYTES + 1)
    except OSError as exc:
        raise ValidationError(f"{_where(path)}: cannot read it: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_FILE_BYTES:
        raise ValidationError(
            f"{_where(path)}: larger than {MAX_CONFIG_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{_where(path)}: not UTF-8 text") from None


def _mark(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "start_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _check_yaml_events(text: str, where: str) -> None:
    """Refuse anchors, aliases and deep nesting by reading the event stream, before any
    object is built (so an alias bomb never expands)."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        anchor = getattr(event, "anchor", None)  # an alias's name, or a node's anchor
        if isinstance(event, yaml.AliasEvent) or anchor is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise ValidationError(
                f"{where}: YAML anchors and aliases are not allowed, found "
                f"{sign}{shorten(anchor)}{_mark(event)}")
        if isinstance(event, _OPENS):
            depth += 1
            if depth > MAX_NESTING:
                raise ValidationError(
                    f"{where}: more than {MAX_NESTING} levels of nested objects and "
                    f"lists{_mark(event)}")
        elif isinstance(event, _CLOSES):
            depth -= 1


def _parse(text: str, path: Path) -> Any:
    where = _where(path)
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        _check_yaml_events(text, where)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except ValidationError:
        raise
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{where}: not valid JSON: {exc.msg} (line {exc.lineno}, "
                              f"column {exc.colno})") from None
    except RecursionError:
        raise ValidationError(f"{where}: more than {MAX_NESTING} levels of nested objects "
                              f"and lists") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError(
            f"{where}: not valid JSON or YAML: {shorten(problem, 80)}{_mark(exc)}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ValidationError(f"{where}: not valid JSON or YAML: "
                              f"{shorten(str(exc).splitlines()[0], 80)}") from None


def _text(doc: dict[str, Any], key: str, path: Path) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{key}: expected text in {shorten(path, 200)}, got {quote(value)}")
    return value


def load_model_file(path: Path) -> ModelFile:
    """Read and parse a model definition; the config itself is validated by the caller
    (``ModelConfig.from_dict``), which names each bad field."""
    data = _parse(_read(path), path)
    check_nesting(_where(path), data)
    if not isinstance(data, dict):
        raise ValidationError(
            f"{_where(path)}: must hold an object, got {type(data).__name__}")
    if "config" not in data:
        return ModelFile(config=data)
    for key in data:
        if key not in FILE_FIELDS:
            raise ValidationError(f"{shorten(key)}: unknown field in {shorten(path, 200)} "
                                  f"(allowed: {', '.join(FILE_FIELDS)})")
    name, version = data.get("name"), data.get("version")
    return ModelFile(config=data["config"],
                     name=None if name is None else validate_model_name(name, "name"),
                     version=None if version is None else semver.validate(version),
                     display_name=_text(data, "display_name", path),
                     description=_text(data, "description", path))
