"""Alert channels behind one protocol: the log, Alertmanager and Slack webhooks, and a channel of
one's own, which is one module and one setting. Deliveries go through a real worker, a real
broker and a real HTTP receiver."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from mlops_tasks.alerts import channels
from mlops_tasks.alerts.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Channel,
    configured,
    lookup,
    verify,
)
from mlops_tasks.alerts.channels import slack as slack_channel
from mlops_tasks.alerts.delivery import deliver, delivery_message
from mlops_tasks.alerts.model import Alert
from mlops_tasks.errors import ConfigError
from mlops_tasks.monitoring.performance import run_monitoring
from mlops_tasks.settings import Settings

from .conftest import wait_for
from .pipeline_support import Pipeline
from .test_monitoring import Receiver
from .test_webhooks import fire_alert


class FileChannel:
    """A channel of this test module: each alert becomes a JSON line of the file its target
    names. Selected with ``MLOPS_ALERT_CHANNELS=tests.test_channels=<path>``; nothing else in
    the project knows about it."""

    name = "file"
    queued = True

    def receiver_name(self, target: str) -> str:
        return f"file:{Path(target).name}"

    def send(self, alert: Alert, target: str,
             settings: Settings, now: float) -> dict[str, Any]:  # noqa: ARG002 - Channel.send
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(json.dumps({"id": alert.id, "status": alert.status, "model": alert.model,
                                  "message": alert.message, "at": now}) + "\n")
        return {"bytes": Path(target).stat().st_size}


CHANNEL = FileChannel()
THIS_MODULE = __name__  # the channel's name in MLOPS_ALERT_CHANNELS


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def notifications(pipe: Pipeline, channel: str) -> list[dict[str, Any]]:
    return [n for n in pipe.svc.alerts.store.notifications() if n["channel"] == channel]


def an_alert(severity: str = "warning", status: str = "firing") -> Alert:
    return Alert("n1-detector", "1.0.0", "accuracy_below_threshold", severity,
                 f"N+1 Detector Performance {severity.title()}: Accuracy dropped to 78.50%",
                 {"accuracy": 0.785, "window": "last_1000", "accuracy_ci95": [0.75, 0.81]},
                 id="abc123", fired_at="2024-05-01T12:00:00Z", status=status)


@pytest.mark.parametrize(("name", "shown", "queued"), [
    ("log", "log", False), ("alertmanager", "webhook", True), ("slack", "webhook", True)])
def test_every_built_in_channel_is_a_channel(name: str, shown: str, queued: bool) -> None:
    """Given the name of a built-in channel, then the registry finds its module's CHANNEL, which
    satisfies the protocol."""
    channel = lookup(name)
    assert isinstance(channel, Channel)
    assert (channel.name, channel.queued) == (shown, queued)
    assert isinstance(CHANNEL, Channel)


def test_receivers_are_numbered_webhook_urls_first_then_alert_channels() -> None:
    """Given webhook URLs in Slack format and more receivers in MLOPS_ALERT_CHANNELS, then the
    receivers are numbered in that order, and shown without their paths (the tokens)."""
    settings = Settings.from_env({
        "MLOPS_WEBHOOK_URLS": "https://hooks.slack.com/T1/token1,https://chat.example/token2",
        "MLOPS_WEBHOOK_FORMAT": "slack",
        "MLOPS_ALERT_CHANNELS": "alertmanager=http://am.example:9093/hook/token3, "
                                f"{THIS_MODULE}=/var/log/alerts.jsonl",
        "MLOPS_WEBHOOK_ALLOW_HTTP": "true"})
    receivers = configured(settings)
    assert [(r.channel_name, r.name) for r in receivers] == [
        ("slack", "https://hooks.slack.com"), ("slack", "https://chat.example"),
        ("alertmanager", "http://am.example:9093"), (THIS_MODULE, "file:alerts.jsonl")]
    assert receivers[3].channel is CHANNEL
    assert [r.channel_name for r in configured(Settings.from_env(
        {"MLOPS_WEBHOOK_URLS": "https://a.example/x"}))] == ["alertmanager"]
    assert configured(Settings()) == []


@pytest.mark.parametrize("value", [
    "pagerduty=https://events.example/token9",  # no such module in alerts/channels/
    "webhook=https://events.example/token9",  # a module there, but no channel
    "tests.no_such_module=https://events.example/token9",
    "log=https://events.example/token9",  # always on
    "not a name=https://events.example/token9",
    " , ",
])
def test_an_unknown_channel_is_refused_when_settings_are_read(value: str) -> None:
    """Given MLOPS_ALERT_CHANNELS naming no channel, then reading the settings fails naming the
    variable and what is allowed, without showing a target."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"MLOPS_ALERT_CHANNELS": value})
    message = str(caught.value)
    assert message.startswith("MLOPS_ALERT_CHANNELS=") and "alertmanager, slack" in message
    assert "token9" not in message


def test_a_module_without_a_channel_is_a_config_error() -> None:
    """Given a module that exists but holds no CHANNEL, then looking it up says so."""
    with pytest.raises(ConfigError, match="CHANNEL is not a Channel"):
        lookup("tests.conftest")


@pytest.mark.parametrize(("severity", "level"), [
    ("info", logging.INFO), ("warning", logging.WARNING), ("critical", logging.CRITICAL)])
def test_the_log_line_keeps_its_text_and_level(severity: str, level: int,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """Given an alert, then the log channel writes its message unchanged at the severity's
    level on mlops.alerts, and ``<message> (resolved)`` at info when it resolves: runbooks grep
    these lines."""
    log = lookup("log")
    with caplog.at_level(logging.INFO):
        log.send(an_alert(severity), "mlops.alerts", Settings(), 0.0)
        log.send(an_alert(severity, status="resolved"), "mlops.alerts", Settings(), 0.0)
    fired, resolved = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    title = f"N+1 Detector Performance {severity.title()}: Accuracy dropped to 78.50%"
    assert fired == ("mlops.alerts", level, title)
    assert resolved == ("mlops.alerts", logging.INFO, f"{title} (resolved)")


def test_the_slack_body_has_a_title_and_at_most_ten_fields() -> None:
    alert = an_alert("critical")
    alert.values = {f"v{i:02d}": i for i in range(12)} | {"nested": {"a": 1}}
    doc = slack_channel.payload(alert, 1_714_564_800.0)
    assert doc["text"] == f":rotating_light: [FIRING] {alert.message}"
    assert len(doc["blocks"][1]["fields"]) == 10
    assert doc["sent_at"] == "2024-05-01T12:00:00Z"
    alert.status = "resolved"
    assert slack_channel.payload(alert, 0.0)["text"].startswith(":white_check_mark: [RESOLVED]")


def test_a_channel_of_ones_own_receives_alerts_through_the_real_worker(
        worker: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Given a webhook URL and this module's file channel named in MLOPS_ALERT_CHANNELS (one
    module and one setting, no other change), when an alert fires and then resolves, then the
    worker delivers both notifications to both receivers, and the notification log records
    each delivery under its channel's name."""
    hook = Receiver()
    out = tmp_path / "alerts.jsonl"
    try:
        monkeypatch.setenv("MLOPS_WEBHOOK_URLS", hook.url)
        monkeypatch.setenv("MLOPS_WEBHOOK_ALLOW_HTTP", "true")  # a local http receiver
        monkeypatch.setenv("MLOPS_ALERT_CHANNELS", f"{THIS_MODULE}={out}")
        pipe, sent = fire_alert(redis_url)
        [alert] = pipe.active()
        assert sent == [{"alert_id": alert["id"], "status": "firing", "receiver": 0},
                        {"alert_id": alert["id"], "status": "firing", "receiver": 1}]
        wait_for(lambda: lines(out) and hook.requests, what="both deliveries")

        pipe.feed("waf-behavioral", 5000, 0.99)
        run_monitoring(pipe.svc)
        wait_for(lambda: len(lines(out)) == 2 and len(hook.requests) == 2,
                 what="both resolved deliveries")
    finally:
        hook.close()
    assert [(x["id"], x["status"], x["message"]) for x in lines(out)] == [
        (alert["id"], "firing", alert["message"]), (alert["id"], "resolved", alert["message"])]
    assert [json.loads(r["body"])["status"] for r in hook.requests] == ["firing", "resolved"]
    logged = wait_for(lambda: (n := notifications(pipe, "file")) and len(n) == 2 and n,
                      what="the file channel's notification log")
    assert [(n["status"], n["result"], n["receiver"], n["attempt"]) for n in logged] == [
        ("resolved", "sent", "file:alerts.jsonl", 1), ("firing", "sent", "file:alerts.jsonl", 1)]
    assert logged[0]["bytes"] == out.stat().st_size
    assert [n["result"] for n in notifications(pipe, "log")] == ["sent", "sent"]


def test_a_receiver_whose_channel_cannot_load_fails_only_its_own_deliveries(
        pipe: Pipeline) -> None:
    """Given settings built without the check of Settings.from_env, naming a channel that does
    not exist, then monitoring still alerts and logs, the delivery is handed on, and the
    delivery fails once, recorded, without a retry."""
    settings = pipe.svc.settings.replace(alert_channels="nosuch=https://x.example/token9")
    pipe.svc.alerts.settings = settings
    pipe.deploy("waf-behavioral")
    pipe.feed("waf-behavioral", 1000, 0.8)
    run_monitoring(pipe.svc)
    [alert] = pipe.active()
    assert pipe.dispatched == [(0, {"alert_id": alert["id"], "status": "firing"})]
    assert [n["result"] for n in notifications(pipe, "log")] == ["sent"]
    result = deliver(settings, pipe.svc.alerts.store,
                     delivery_message(alert["id"], "firing", 0), attempt=0)
    assert result == {"result": "failed", "error": "ConfigError in alert channel nosuch"}
    [entry] = notifications(pipe, "webhook")
    assert (entry["result"], entry["receiver"]) == ("failed", "https://x.example")


def test_a_channel_that_breaks_is_a_final_failure_named_by_its_type(
        worker: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Given a channel that raises something other than DeliveryError (the file channel
    pointed at a folder), then the delivery fails at once, without retries, recorded and
    logged with the exception's type and never its message (which could quote a secret)."""
    folder = tmp_path / "token-folder"
    folder.mkdir()
    monkeypatch.setenv("MLOPS_ALERT_CHANNELS", f"{THIS_MODULE}={folder}")
    with caplog.at_level(logging.INFO):
        pipe, _ = fire_alert(redis_url)
        [entry] = wait_for(lambda: notifications(pipe, "file"), what="the failed delivery")
        wait_for(lambda: any(r.getMessage() == "file delivery failed" for r in caplog.records),
                 what="the failure logged")
    assert (entry["result"], entry["attempt"]) == ("failed", 1)
    assert entry["error"] == f"IsADirectoryError in alert channel {THIS_MODULE}"
    assert str(folder) not in json.dumps(pipe.svc.alerts.store.notifications())  # the error's
    assert str(folder) not in caplog.text  # text would have shown the whole path


def test_slack_format_through_the_real_worker(worker: Any, redis_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Given MLOPS_WEBHOOK_FORMAT=slack, then the webhook receiver gets Slack's body, signed
    like any webhook delivery."""
    hook = Receiver()
    try:
        monkeypatch.setenv("MLOPS_WEBHOOK_URLS", hook.url)
        monkeypatch.setenv("MLOPS_WEBHOOK_ALLOW_HTTP", "true")  # a local http receiver
        monkeypatch.setenv("MLOPS_WEBHOOK_FORMAT", "slack")
        monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", "s3cret")
        pipe, _ = fire_alert(redis_url)
        [alert] = pipe.active()
        wait_for(lambda: hook.requests, what="the Slack delivery")
    finally:
        hook.close()
    req = hook.requests[0]
    doc = json.loads(req["body"])
    assert doc["text"] == f":rotating_light: [FIRING] {alert['message']}"
    assert doc["blocks"][0]["text"]["text"] == doc["text"]
    assert verify(req["body"], "s3cret", req["headers"][SIGNATURE_HEADER],
                  req["headers"][TIMESTAMP_HEADER])
    assert channels.lookup("slack").name == "webhook"
