"""Structured logs: one JSON object per line (or plain text with MLOPS_LOG_FORMAT=text)."""

from __future__ import annotations

import json
import logging
import sys
from typing import IO, Any

from .settings import Settings
from .timefmt import iso

# Attributes every record has, and Celery's "data" (a copy of the message's arguments, which can
# hold a whole event batch): neither is repeated in the structured output.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "data"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": iso(record.created, ms=True),
                               "level": record.levelname.lower(),
                               "logger": record.name, "message": record.getMessage()}
        doc.update({key: value for key, value in record.__dict__.items()
                    if key not in _STANDARD and not key.startswith("_")})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in record.__dict__.items()
                  if k not in _STANDARD and not k.startswith("_")}
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        line = (f"{iso(record.created, ms=True)} [{record.levelname}] {record.name}: "
                f"{record.getMessage()}")
        return f"{line} ({tail})" if tail else line


MONITORING_LOGGERS = ("mlops.alerts", "mlops.monitoring", "mlops.tuning", "mlops.scheduler")


def configure_logging(settings: Settings, stream: IO[str] | None = None,
                      monitoring_file: bool = True) -> None:
    """Send the project's and Celery's logs to ``stream`` (stderr) in the configured format, and
    the monitoring loggers (alerts, monitoring, tuning, scheduler) also to the monitoring log."""
    formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if monitoring_file:
        path = settings.monitoring_log_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            file_handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:
            root.warning("monitoring log unavailable", extra={"path": str(path),
                                                              "error": str(exc)})
        else:
            file_handler.setFormatter(formatter)
            for name in MONITORING_LOGGERS:
                logger = logging.getLogger(name)
                for old in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
                    logger.removeHandler(old)
                logger.addHandler(file_handler)
    root.setLevel(settings.log_level.upper())
    # One line per successful task is noise at hundreds of batches a second; failures still log.
    if settings.log_level != "debug":
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
