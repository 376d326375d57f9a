"""Logging for every process (workers, beat, the CLI, the server): one call, five strategies.

``MLOPS_LOG_STRATEGY`` picks where lines go:

* ``console``: human lines on stderr, the level coloured only when stderr is a terminal;
* ``json``: one JSON object per line on stderr;
* ``file``: human lines in ``<MLOPS_LOG_DIR>/application.log``;
* ``syslog``: human lines to syslog (``MLOPS_SYSLOG_ADDRESS``, else ``/dev/log`` when it
  exists, else ``localhost:514`` over UDP);
* ``split``: ``application.log`` plus ``ml-monitoring.log`` holding the lines of the
  :data:`MONITORING_LOGGERS` (monitoring, degradation, tuning, alerts, scheduler, cleanup),
  each line in one file only.

Unset, the strategy follows ``MLOPS_LOG_FORMAT`` as before this setting existed: ``json`` or
``console`` on stderr, and the monitoring loggers also in the monitoring log
(``MLOPS_MONITORING_LOG``, default ``<MLOPS_LOG_DIR>/ml-monitoring.log``) in the same format.

Files are opened with :class:`logging.handlers.WatchedFileHandler`, never rotated here: the
worker pools, their prefork children, beat and the server all append to the same files, and a
size-based handler in each of them would rename the file under the others (lost and interleaved
lines). A watched file is reopened by whichever process next writes after an external
``logrotate`` moved it away (``copytruncate`` is not needed, and harmless: lines are appended).

Every line written while a Celery task runs carries ``task_name`` and ``task_id``
(:class:`TaskContext`). The human line is ``<time> [<LEVEL>] <logger>: <message> (<k>=<v> ...)``,
so the runbook's ``grep "Performance Warning"`` and ``grep -E "(WARNING|CRITICAL)"`` work on it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .settings import Settings
from .timefmt import iso

# Attributes every record has, and Celery's "data" (a copy of the message's arguments, which can
# hold a whole event batch): neither is repeated in the structured output.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "data"}

APPLICATION_LOG = "application.log"
MONITORING_LOG = "ml-monitoring.log"

# The loggers of the monitoring log (and their children): performance and degradation
# monitoring, tuning, alert notifications, the scheduler (ours and Celery beat's) and cleanup.
MONITORING_LOGGERS = ("mlops.alerts", "mlops.monitoring", "mlops.tuning", "mlops.scheduler",
                      "mlops.maintenance", "celery.beat")

STRATEGIES = ("console", "json", "file", "syslog", "split")

# The handlers the last configure_logging call installed, closed by the next one.
_installed: list[logging.Handler] = []

_COLOURS = {"DEBUG": "\033[36m", "INFO": "\033[32m", "WARNING": "\033[33m",
            "ERROR": "\033[31m", "CRITICAL": "\033[1;31m"}
_RESET = "\033[0m"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": iso(record.created, ms=True),
                               "level": record.levelname.lower(),
                               "logger": record.name, "message": record.getMessage()}
        doc.update(_extras(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    """``<time> [<LEVEL>] <logger>: <message> (<k>=<v> ...)``; ``colour`` wraps the level in
    ANSI colours (outside the brackets' text, so greps for the level still match);
    ``timestamp=False`` leaves the time to the receiver (syslog)."""

    def __init__(self, *, colour: bool = False, timestamp: bool = True) -> None:
        super().__init__()
        self.colour = colour
        self.timestamp = timestamp

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname
        if self.colour and level in _COLOURS:
            level = f"{_COLOURS[level]}{level}{_RESET}"
        line = f"[{level}] {record.name}: {record.getMessage()}"
        if self.timestamp:
            line = f"{iso(record.created, ms=True)} {line}"
        extras = _extras(record)
        if extras:
            line += " (" + " ".join(f"{k}={v}" for k, v in extras.items()) + ")"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def is_monitoring(name: str) -> bool:
    """Whether logger ``name`` writes to the monitoring log."""
    return any(name == m or name.startswith(m + ".") for m in MONITORING_LOGGERS)


class TaskContext(logging.Filter):
    """Adds ``task_name`` and ``task_id`` to a record logged while a Celery task runs in this
    thread (Celery's own task stack, as its TaskFormatter reads it); other records pass as they
    are. A handler filter, so records propagated from any logger get it."""

    def __init__(self) -> None:
        super().__init__()
        try:
            from celery._state import get_current_task  # noqa: PLC0415 - only where logging is set up
        except ImportError:  # pragma: no cover - Celery is a dependency
            self._current: Callable[[], Any] | None = None
        else:
            self._current = get_current_task

    def filter(self, record: logging.LogRecord) -> bool:
        task = self._current() if self._current is not None else None
        if task is not None and not hasattr(record, "task_id"):
            request = getattr(task, "request", None)
            task_id = getattr(request, "id", None)
            if task_id is not None:  # a task called directly, not executed by a worker: no id
                record.task_name = task.name
                record.task_id = task_id
        return True


class _Only(logging.Filter):
    """Passes the monitoring loggers' records (``monitoring=True``) or every other one."""

    def __init__(self, *, monitoring: bool) -> None:
        super().__init__()
        self.monitoring = monitoring

    def filter(self, record: logging.LogRecord) -> bool:
        return is_monitoring(record.name) == self.monitoring


def _file(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    return logging.handlers.WatchedFileHandler(path, encoding="utf-8")


def syslog_handler(address: str | None) -> logging.Handler:
    """To ``address`` (a socket path or ``host:port`` over UDP), else ``/dev/log`` when it
    exists, else ``localhost:514`` over UDP."""
    target: str | tuple[str, int]
    if address is None:
        target = "/dev/log" if Path("/dev/log").exists() else ("localhost", 514)
    elif address.startswith("/"):
        target = address
    else:
        host, _, port = address.rpartition(":")
        target = (host.strip("[]"), int(port))
    handler = logging.handlers.SysLogHandler(
        target, socktype=socket.SOCK_DGRAM if isinstance(target, tuple) else None)
    handler.ident = "mlops: "
    return handler


def strategy_of(settings: Settings) -> str:
    """The configured strategy; unset, ``json`` or ``console`` after ``MLOPS_LOG_FORMAT``."""
    if settings.log_strategy:
        return settings.log_strategy
    return "json" if settings.log_format == "json" else "console"


def _handlers(settings: Settings, strategy: str, stream: IO[str],
              monitoring_file: bool) -> tuple[list[logging.Handler], list[str]]:
    """The strategy's handlers, formatted and filtered, and the problems met (files that could
    not be opened: logging carries on without them)."""
    human = TextFormatter()
    out: list[logging.Handler] = []
    problems: list[str] = []

    def add(make: Callable[[], logging.Handler], formatter: logging.Formatter,
            only: bool | None = None) -> None:
        try:
            handler = make()
        except OSError as exc:
            problems.append(str(exc))
            return
        handler.setFormatter(formatter)
        if only is not None:
            handler.addFilter(_Only(monitoring=only))
        out.append(handler)

    monitoring_path = settings.monitoring_log_path
    if strategy in ("console", "json"):
        tty = bool(getattr(stream, "isatty", lambda: False)())
        formatter: logging.Formatter = (
            JsonFormatter() if strategy == "json" else TextFormatter(colour=tty))
        add(lambda: logging.StreamHandler(stream), formatter)
        if monitoring_file:  # the monitoring log of before the strategies, in the same format
            add(lambda: _file(monitoring_path),
                JsonFormatter() if strategy == "json" else human, only=True)
    elif strategy == "file":
        add(lambda: _file(settings.log_dir_path / APPLICATION_LOG), human)
    elif strategy == "split":
        split_path = settings.monitoring_log or settings.log_dir_path / MONITORING_LOG
        add(lambda: _file(settings.log_dir_path / APPLICATION_LOG), human, only=False)
        add(lambda: _file(split_path), human, only=True)
    elif strategy == "syslog":
        add(lambda: syslog_handler(settings.syslog_address), TextFormatter(timestamp=False))
    else:
        raise ValueError(f"unknown log strategy {strategy!r} (allowed: {', '.join(STRATEGIES)})")
    if not out:  # nowhere to write: stderr rather than silence
        out.append(logging.StreamHandler(stream))
        out[0].setFormatter(human)
    task_context = TaskContext()
    for handler in out:
        handler.addFilter(task_context)
    return out, problems


def configure_logging(settings: Settings, stream: IO[str] | None = None,
                      monitoring_file: bool = True) -> None:
    """Send the project's and Celery's logs where ``MLOPS_LOG_STRATEGY`` says (see the module's
    docstring), replacing the root logger's handlers; the same in every process.
    ``monitoring_file=False`` leaves out the extra monitoring log of the ``console`` and
    ``json`` strategies."""
    strategy = strategy_of(settings)
    handlers, problems = _handlers(settings, strategy, stream or sys.stderr, monitoring_file)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if old in _installed:  # ours: close its file or socket (never someone else's stream)
            old.close()
    _installed[:] = handlers
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # One line per successful task is noise at hundreds of batches a second; failures still log.
    if settings.log_level != "debug":
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    for problem in problems:
        root.warning("log file unavailable", extra={"strategy": strategy, "error": problem})
