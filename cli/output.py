"""Human tables and ``--json`` documents: every command prints through here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def safe(text: str) -> str:
    """Text fit for a terminal: every non-printable character (escape sequences, newlines that
    would forge table rows, bidirectional overrides) shown escaped, as ``\\x1b``, ``\\n``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)  # JSON escapes control characters itself
    return safe(str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()
    out = [line([h.upper() for h in headers]), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def pct(x: Any) -> str:
    """A proportion as a percentage with two decimals; ``-`` for None."""
    return "-" if x is None else f"{x * 100:.2f}%"


def metrics_table(windows: dict[str, dict[str, Any]]) -> str:
    """One row per window of a model's window metrics (WindowReader.windows)."""
    rows = [[name, m["count"], pct(m["accuracy"]), pct(m["precision"]), pct(m["recall"]),
             pct(m["f1"]), pct(m["false_positive_rate"]), fmt(m["avg_confidence"]),
             fmt(m["latency_p50_ms"]), fmt(m["latency_p95_ms"])]
            for name, m in windows.items()]
    return table(["window", "labeled", "accuracy", "precision", "recall", "f1", "fpr",
                  "avg conf", "p50 ms", "p95 ms"], rows)


def emit(as_json: bool, data: Any, human: Callable[[], str] | str) -> None:
    """Print ``data`` as JSON, or the human rendering."""
    if as_json:
        click.echo(to_json(data))
    else:
        click.echo(human() if callable(human) else human)
