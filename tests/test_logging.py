"""MLOPS_LOG_STRATEGY: each strategy writes where it should, the split keeps the monitoring lines
apart, the runbook's greps find their lines, task lines name their task, rotation is survived."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_tasks import keys
from mlops_tasks.logs import (
    APPLICATION_LOG,
    MONITORING_LOG,
    MONITORING_LOGGERS,
    configure_logging,
    syslog_handler,
)
from mlops_tasks.monitoring.degradation import run_degradation
from mlops_tasks.monitoring.performance import run_monitoring
from mlops_tasks.settings import Settings, check_env
from mlops_tasks.tuning.engine import run_tuning

from .pipeline_support import Pipeline
from .test_tuning import feed_calibrated

OTHER_LOGGERS = ("mlops.ingest", "mlops.worker", "mlops.client", "celery.worker")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging owns the root logger: put back pytest's handlers afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    trace = logging.getLogger("celery.app.trace")
    trace_level = trace.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    trace.setLevel(trace_level)


def configure(tmp_path: Path, stream: Any = None, **env: str) -> Settings:
    environ = {"MLOPS_DATA_DIR": str(tmp_path / "data"), "MLOPS_LOG_DIR": str(tmp_path / "logs"),
               **env}
    settings = Settings.from_env(environ)
    configure_logging(settings, stream=stream)
    return settings


def flush() -> None:
    for h in logging.getLogger().handlers:
        h.flush()


def every_logger(message: str) -> None:
    for name in (*MONITORING_LOGGERS, *OTHER_LOGGERS):
        logging.getLogger(name).warning("%s from %s", message, name)
    flush()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_new_settings_are_validated() -> None:
    _, problems = check_env({"MLOPS_LOG_STRATEGY": "daily", "MLOPS_SYSLOG_ADDRESS": "host"})
    assert problems == [
        ("MLOPS_LOG_STRATEGY='daily' is not allowed: expected one of console, json, file, "
         "syslog, split"),
        ("MLOPS_SYSLOG_ADDRESS='host' is not allowed: expected a socket path such as /dev/log, "
         "or host:port (UDP)")]


def test_without_a_strategy_logging_is_as_before(tmp_path: Path) -> None:
    """Given no MLOPS_LOG_STRATEGY: JSON on stderr, and the monitoring loggers also in
    <log dir>/ml-monitoring.log (the data dir's logs folder unless MLOPS_LOG_DIR)."""
    stream = io.StringIO()
    settings = Settings.from_env({"MLOPS_DATA_DIR": str(tmp_path / "data")})
    configure_logging(settings, stream=stream)
    every_logger("hello")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert {d["logger"] for d in lines} == {*MONITORING_LOGGERS, *OTHER_LOGGERS}
    monitoring = (tmp_path / "data" / "logs" / MONITORING_LOG).read_text().splitlines()
    assert {json.loads(x)["logger"] for x in monitoring} == set(MONITORING_LOGGERS)


def test_text_format_without_a_strategy_is_the_console(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure(tmp_path, stream, MLOPS_LOG_FORMAT="text")
    logging.getLogger("mlops.ingest").warning("slow batch", extra={"model": "m"})
    [line] = stream.getvalue().splitlines()
    assert line.endswith(" [WARNING] mlops.ingest: slow batch (model=m)")
    assert (tmp_path / "logs" / MONITORING_LOG).exists()


def test_console_is_coloured_only_on_a_terminal(tmp_path: Path) -> None:
    plain, tty = io.StringIO(), Tty()
    configure(tmp_path, plain, MLOPS_LOG_STRATEGY="console")
    logging.getLogger("mlops.alerts").critical("Performance Warning (critical): x")
    configure(tmp_path, tty, MLOPS_LOG_STRATEGY="console")
    logging.getLogger("mlops.alerts").critical("Performance Warning (critical): x")
    assert "\033[" not in plain.getvalue() and "[CRITICAL] mlops.alerts" in plain.getvalue()
    assert "\033[1;31mCRITICAL\033[0m" in tty.getvalue()
    grep = subprocess.run(["grep", "-E", "(WARNING|CRITICAL)"], input=tty.getvalue(),
                          capture_output=True, text=True, check=False)
    assert grep.returncode == 0


def test_json_is_one_object_per_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure(tmp_path, stream, MLOPS_LOG_STRATEGY="json")
    logging.getLogger("mlops.ingest").info("batch\nwith a newline", extra={"n": 3})
    try:
        int("boom")
    except ValueError:
        logging.getLogger("mlops.worker").exception("failed")
    first, second = (json.loads(x) for x in stream.getvalue().splitlines())
    assert first["message"] == "batch\nwith a newline" and first["n"] == 3
    assert first["level"] == "info" and first["logger"] == "mlops.ingest"
    assert second["level"] == "error" and "ValueError: invalid literal" in second["exc"]


def test_file_writes_everything_to_application_log(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure(tmp_path, stream, MLOPS_LOG_STRATEGY="file")
    every_logger("hello")
    assert stream.getvalue() == ""
    text = (tmp_path / "logs" / APPLICATION_LOG).read_text()
    for name in (*MONITORING_LOGGERS, *OTHER_LOGGERS):
        assert f"[WARNING] {name}: hello from {name}" in text
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [APPLICATION_LOG]


def test_the_file_is_reopened_after_an_external_logrotate(tmp_path: Path) -> None:
    """Given logrotate moved application.log away (no copytruncate), the next line goes to a
    new application.log, and the moved file keeps the lines before."""
    configure(tmp_path, MLOPS_LOG_STRATEGY="file")
    log = logging.getLogger("mlops.ingest")
    log.warning("before rotation")
    flush()
    current = tmp_path / "logs" / APPLICATION_LOG
    current.rename(tmp_path / "logs" / "application.log.1")
    log.warning("after rotation")
    flush()
    assert "after rotation" in current.read_text()
    assert "before rotation" not in current.read_text()
    rotated = (tmp_path / "logs" / "application.log.1").read_text()
    assert "before rotation" in rotated and "after rotation" not in rotated


def test_split_keeps_the_monitoring_lines_apart(tmp_path: Path) -> None:
    configure(tmp_path, MLOPS_LOG_STRATEGY="split")
    every_logger("hello")
    logging.getLogger("mlops.monitoring.child").warning("child line")
    flush()
    application = (tmp_path / "logs" / APPLICATION_LOG).read_text()
    monitoring = (tmp_path / "logs" / MONITORING_LOG).read_text()
    for name in MONITORING_LOGGERS:
        assert f"hello from {name}" in monitoring and f"hello from {name}" not in application
    for name in OTHER_LOGGERS:
        assert f"hello from {name}" in application and f"hello from {name}" not in monitoring
    assert "child line" in monitoring


def test_syslog_sends_to_the_configured_receiver(tmp_path: Path) -> None:
    """Given a UDP receiver of the test's own, a warning arrives as one datagram with the
    user facility's warning priority (<12>) and the ident."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    try:
        port = receiver.getsockname()[1]
        configure(tmp_path, MLOPS_LOG_STRATEGY="syslog", MLOPS_SYSLOG_ADDRESS=f"127.0.0.1:{port}")
        logging.getLogger("mlops.alerts").critical("WAF Behavioral Performance Warning "
                                                   "(critical): Accuracy dropped to 80.00%")
        data, _ = receiver.recvfrom(65536)
    finally:
        receiver.close()
    text = data.decode()
    assert text.startswith("<10>mlops: [CRITICAL] mlops.alerts: WAF Behavioral Performance "
                           "Warning (critical)"), text
    assert not (tmp_path / "logs").exists()


def test_syslog_defaults_to_dev_log_else_localhost_udp() -> None:
    handler = syslog_handler(None)
    try:
        expected = "/dev/log" if Path("/dev/log").exists() else ("localhost", 514)
        assert handler.address == expected  # type: ignore[attr-defined]
    finally:
        handler.close()


def grep(pattern: str, path: Path, *flags: str) -> list[str]:
    out = subprocess.run(["grep", *flags, pattern, str(path)], capture_output=True, text=True,
                         check=False)
    return out.stdout.splitlines()


def test_the_runbook_greps_find_their_lines_in_the_monitoring_log(
        pipe: Pipeline, raw: Any, tmp_path: Path) -> None:
    """Given the split strategy and real monitoring, degradation, tuning and a failing model:
    the runbook's five greps each find their line in ml-monitoring.log, including
    waf-behavioral's critical accuracy alert."""
    configure(tmp_path, MLOPS_LOG_STRATEGY="split", MLOPS_LOG_LEVEL="info")
    # waf-behavioral: 95% an hour ago, 80% now (below its critical 0.90 threshold)
    pipe.deploy("waf-behavioral", ago_s=7200)
    pipe.feed("waf-behavioral", 1000, 0.95, at=pipe.clock.now - 7000)
    pipe.feed("waf-behavioral", 2000, 0.80)
    # queue-anomaly cannot be read (monitoring failed)
    pipe.deploy("queue-anomaly")
    pipe.feed("queue-anomaly", 200, 0.95)
    raw.lpush(keys.recent("queue-anomaly", "1.0.0"), b"garbage")
    run_monitoring(pipe.svc)
    pipe.clock.now += 60  # degradation checks read whole minutes
    run_degradation(pipe.svc)
    # n1-detector: a known better threshold (auto-tuned)
    pipe.deploy("n1-detector")
    feed_calibrated(pipe, "n1-detector", 4000, best=0.75)
    run_tuning(pipe.svc)
    flush()
    log = tmp_path / "logs" / MONITORING_LOG
    [warning] = grep("Performance Warning", log)
    assert re.search(r"\[CRITICAL\] mlops\.alerts: WAF Behavioral Performance Warning "
                     r"\(critical\): Accuracy dropped to 7\d\.\d\d% \(", warning), warning
    assert warning in grep("(WARNING|CRITICAL)", log, "-E")
    degraded = grep("Performance Degraded", log)
    assert any("WAF Behavioral Performance Degraded" in x for x in degraded)
    assert any("n1-detector auto-tuned: confidence_threshold" in x for x in grep("auto-tuned", log))
    assert any("model=queue-anomaly" in x for x in grep("monitoring failed", log))
    assert grep("Performance", tmp_path / "logs" / APPLICATION_LOG) == []


def test_a_line_inside_a_celery_task_names_the_task(worker: Any, redis_url: str,
                                                    tmp_path: Path) -> None:
    """Given the file strategy, the performance-monitoring job run by a real worker: its lines
    carry the task's name and id; a line outside any task carries neither."""
    from mlops_tasks.workers.app import app

    configure(tmp_path, MLOPS_LOG_STRATEGY="file", MLOPS_LOG_LEVEL="info")
    result = app.send_task("mlops.monitoring.performance")
    result.get(timeout=60)
    logging.getLogger("mlops.ingest").warning("outside")
    flush()
    lines = (tmp_path / "logs" / APPLICATION_LOG).read_text().splitlines()
    [done] = [x for x in lines if "Performance monitoring executed successfully" in x]
    assert "task_name=mlops.monitoring.performance" in done
    assert f"task_id={result.id}" in done
    [outside] = [x for x in lines if "outside" in x]
    assert "task_id" not in outside
