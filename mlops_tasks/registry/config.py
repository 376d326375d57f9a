"""A model version's configuration: typed, validated, and editable by dotted path.

Every validation error names the field by its path (``config.tuning.step``) and says what was
expected, so a bad config file or ``--set`` value is reported in one line; a refused value is
quoted by ``limits.quote`` (a short, escaped prefix). Names are matched whole (``fullmatch``: a
trailing newline is not part of a valid name), and a configuration is at most
``limits.MAX_RECORD_BYTES`` as JSON and ``limits.MAX_NESTING`` levels deep.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..alerts.model import SEVERITIES
from ..errors import ValidationError
from .limits import check_nesting, check_size, quote, shorten

METRICS = ("f1", "precision", "recall", "accuracy", "f_beta", "cost")
MAX_GRID_POINTS = 1001

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def validate_model_name(name: Any, field_name: str = "name") -> str:
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise ValidationError(
            f"{field_name}: expected a model name of lowercase letters, digits, '.', '_' or '-' "
            f"(1-64 characters, starting with a letter or digit), got {quote(name)}")
    return name


def _number(data: Mapping[str, Any], key: str, path: str, *, lo: float | None = None,
            hi: float | None = None, lo_open: bool = False, integer: bool = False,
            default: Any = ...) -> Any:
    if key not in data or data[key] is None:
        if default is ...:
            raise ValidationError(f"{path}.{key}: required")
        return default
    value = data[key]
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise ValidationError(f"{path}.{key}: expected {kind}, got {quote(value)}")
    if integer and not float(value).is_integer():
        raise ValidationError(f"{path}.{key}: expected {kind}, got {quote(value)}")
    too_low = lo is not None and (value < lo or (lo_open and value == lo))
    too_high = hi is not None and value > hi
    if too_low or too_high:
        lower = f"greater than {lo:g}" if lo_open else f"at least {lo:g}"
        if lo is not None and hi is not None:
            rng = f"{lower} and at most {hi:g}"
        elif lo is not None:
            rng = lower
        else:
            rng = f"at most {hi:g}"
        raise ValidationError(f"{path}.{key}: expected {kind} {rng}, got {quote(value)}")
    return int(value) if integer else float(value)


def _on_lattice(value: float, field: str) -> None:
    """Thresholds are exact on the 0.001 lattice of the score histograms (see binning.py)."""
    from ..binning import on_lattice  # noqa: PLC0415 - binning needs numpy; reading a config not

    if not on_lattice(value):
        raise ValidationError(f"{field}: expected a multiple of 0.001, got {quote(value)}")


def _bool(data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ValidationError(f"{path}.{key}: expected true or false, got {quote(value)}")
    return value


def _choice(data: Mapping[str, Any], key: str, path: str, options: tuple[str, ...],
            default: str | None = None) -> str:
    if key not in data:
        if default is None:
            raise ValidationError(f"{path}.{key}: required (one of {', '.join(options)})")
        return default
    value = data[key]
    if not isinstance(value, str) or value not in options:
        raise ValidationError(
            f"{path}.{key}: expected one of {', '.join(options)}, got {quote(value)}")
    return value


def _no_unknown(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{path}: expected an object, got {quote(data)}")
    for key in data:
        if key not in allowed:
            raise ValidationError(
                f"{path}.{shorten(key)}: unknown field (allowed: {', '.join(allowed)})")


@dataclass(frozen=True)
class TuningSpec:
    """What the auto-tuner may change: one threshold parameter over a grid, scored by a metric."""

    parameter: str
    min: float
    max: float
    step: float
    window_s: int = 3600
    metric: str = "f1"
    enabled: bool = True
    beta: float | None = None
    cost_fp: float | None = None
    cost_fn: float | None = None

    FIELDS = ("parameter", "min", "max", "step", "window_s", "metric", "enabled", "beta",
              "cost_fp", "cost_fn")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "config.tuning") -> TuningSpec:
        _no_unknown(data, cls.FIELDS, path)
        parameter = data.get("parameter")
        if not isinstance(parameter, str) or not _IDENT.fullmatch(parameter):
            raise ValidationError(
                f"{path}.parameter: expected an identifier such as confidence_threshold, "
                f"got {quote(parameter)}")
        lo = _number(data, "min", path, lo=0, hi=1)
        hi = _number(data, "max", path, lo=0, hi=1)
        if hi <= lo:
            raise ValidationError(f"{path}.max: expected a number greater than min ({lo:g}), "
                                  f"got {quote(hi)}")
        step = _number(data, "step", path, lo=0, lo_open=True, hi=hi - lo)
        for key, value in (("min", lo), ("max", hi), ("step", step)):
            _on_lattice(value, f"{path}.{key}")
        if (hi - lo) / step + 1 > MAX_GRID_POINTS + 1e-9:
            raise ValidationError(
                f"{path}.step: expected a step giving at most {MAX_GRID_POINTS} grid points, "
                f"got {quote(step)}")
        window_s = _number(data, "window_s", path, lo=60, integer=True, default=3600)
        metric = _choice(data, "metric", path, METRICS, default="f1")
        beta = cost_fp = cost_fn = None
        if metric == "f_beta":
            beta = _number(data, "beta", path, lo=0, lo_open=True)
        elif "beta" in data and data["beta"] is not None:
            raise ValidationError(f"{path}.beta: only allowed with metric f_beta")
        if metric == "cost":
            cost_fp = _number(data, "cost_fp", path, lo=0)
            cost_fn = _number(data, "cost_fn", path, lo=0)
            if cost_fp == 0 and cost_fn == 0:
                raise ValidationError(f"{path}.cost_fp: cost_fp and cost_fn cannot both be 0")
        else:
            for key in ("cost_fp", "cost_fn"):
                if data.get(key) is not None:
                    raise ValidationError(f"{path}.{key}: only allowed with metric cost")
        return cls(parameter=parameter, min=lo, max=hi, step=step, window_s=window_s,
                   metric=metric, enabled=_bool(data, "enabled", path, default=True), beta=beta,
                   cost_fp=cost_fp, cost_fn=cost_fn)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("beta", "cost_fp", "cost_fn"):
            if out[key] is None:
                del out[key]
        return out

    def grid(self) -> list[float]:
        """The candidate thresholds: min, min+step, ..., max (inclusive), rounded to 1e-9."""
        n = math.floor((self.max - self.min) / self.step + 1e-9) + 1
        return [round(self.min + i * self.step, 9) for i in range(n)]


@dataclass(frozen=True)
class ModelConfig:
    """The configuration of one model version at one revision."""

    decision_threshold: float
    accuracy_threshold: float
    severity: str
    tuning: TuningSpec
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)

    FIELDS = ("decision_threshold", "accuracy_threshold", "severity", "tuning", "enabled",
              "params")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "config") -> ModelConfig:
        _no_unknown(data, cls.FIELDS, path)
        if "tuning" not in data:
            raise ValidationError(f"{path}.tuning: required")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise ValidationError(f"{path}.params: expected an object, got {quote(params)}")
        check_nesting(f"{path}.params", params)
        try:
            json.dumps(params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"{path}.params: expected JSON values ({shorten(exc, 80)})") from None
        check_size(f"{path}.params", params)
        decision = _number(data, "decision_threshold", path, lo=0, hi=1)
        _on_lattice(decision, f"{path}.decision_threshold")
        config = cls(
            decision_threshold=decision,
            accuracy_threshold=_number(data, "accuracy_threshold", path, lo=0, hi=1),
            severity=_choice(data, "severity", path, SEVERITIES, default="warning"),
            tuning=TuningSpec.from_dict(data["tuning"], f"{path}.tuning"),
            enabled=_bool(data, "enabled", path, default=True),
            params=dict(params),
        )
        check_size(path, config.to_dict())
        return config

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_threshold": self.decision_threshold,
            "accuracy_threshold": self.accuracy_threshold,
            "severity": self.severity,
            "tuning": self.tuning.to_dict(),
            "enabled": self.enabled,
            "params": dict(self.params),
        }


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from ``--set``; VALUE is read as JSON when it parses, else as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValidationError(f"--set: expected KEY=VALUE, got {quote(text)}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    except RecursionError:
        raise ValidationError(f"--set {shorten(key)}: nested too deeply") from None
    return key, value


def apply_changes(config: Mapping[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    """Apply dotted-path assignments to a config dict and validate the result."""
    out = json.loads(json.dumps(config))
    for key, value in changes:
        parts = key.split(".")
        top = parts[0]
        if top not in ModelConfig.FIELDS:
            raise ValidationError(
                f"--set {shorten(key)}: unknown field (allowed: {', '.join(ModelConfig.FIELDS)}, "
                f"tuning.<field>, params.<name>)")
        if top == "tuning" and len(parts) == 2 and parts[1] not in TuningSpec.FIELDS:
            raise ValidationError(
                f"--set {shorten(key)}: unknown field "
                f"(allowed: tuning.{', tuning.'.join(TuningSpec.FIELDS)})")
        if top not in ("tuning", "params") and len(parts) > 1:
            raise ValidationError(f"--set {shorten(key)}: {top} has no sub-fields")
        target = out
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            target = nxt
        target[parts[-1]] = value
    return ModelConfig.from_dict(out).to_dict()
