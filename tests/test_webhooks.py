"""Webhook alerts cannot be forged: the delivery message names a stored alert, the worker builds
and signs the body, the signature covers a fresh timestamp, and a broken URL is a recorded
failure that never shows its token. A real worker, a real HTTP receiver, a real broker."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlops_tasks.alerts.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryError,
    receiver_name,
    signature,
    verify,
)
from mlops_tasks.alerts.delivery import deliver, delivery_message
from mlops_tasks.errors import ConfigError
from mlops_tasks.monitoring.performance import run_monitoring
from mlops_tasks.queues import MONITORING_QUEUE, TASK_DELIVER_WEBHOOK
from mlops_tasks.settings import Settings

from .conftest import wait_for
from .pipeline_support import Pipeline
from .test_monitoring import Receiver

SECRET = "s3cret-hmac-key"  # noqa: S105 - a test key


@pytest.fixture
def hook(monkeypatch) -> Any:
    """A receiver of every test's webhooks, signed with SECRET."""
    made: list[Receiver] = []

    def make(fail_first: int = 0, backoff_s: str = "0.2") -> Receiver:
        receiver = Receiver(fail_first=fail_first)
        made.append(receiver)
        monkeypatch.setenv("MLOPS_WEBHOOK_URLS", receiver.url)
        monkeypatch.setenv("MLOPS_WEBHOOK_ALLOW_HTTP", "true")  # a local http receiver
        monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("MLOPS_WEBHOOK_BACKOFF_S", backoff_s)
        return receiver
    yield make
    for receiver in made:
        receiver.close()


def fire_alert(redis_url: str) -> tuple[Pipeline, list[dict[str, Any]]]:
    """A real accuracy alert on waf-behavioral, its deliveries sent through the broker; returns
    the pipeline and the delivery messages monitoring dispatched."""
    from mlops_tasks.workers.runtime import send_webhook

    sent: list[dict[str, Any]] = []

    def dispatch(index: int, delivery: dict[str, Any]) -> None:
        sent.append({**delivery, "receiver": index})
        send_webhook(index, delivery)

    pipe = Pipeline(redis_url, dispatch=dispatch)
    pipe.deploy("waf-behavioral")
    pipe.feed("waf-behavioral", 1000, 0.8)
    run_monitoring(pipe.svc)
    return pipe, sent


def webhook_log(pipe: Pipeline) -> list[dict[str, Any]]:
    return [n for n in pipe.svc.alerts.store.notifications() if n["channel"] == "webhook"]


def send(app: Any, message: Any) -> None:
    app.send_task(TASK_DELIVER_WEBHOOK, args=[message], queue=MONITORING_QUEUE)


def test_a_real_alert_is_signed_over_its_timestamp_and_body(worker, redis_url, hook) -> None:
    """Given a real alert, then the task message names only the alert, and the receiver gets
    the body built from the stored alert with a signature over timestamp and body that
    verifies; changing the body or the timestamp, or waiting past the tolerance, fails."""
    receiver = hook()
    pipe, sent = fire_alert(redis_url)
    [alert] = pipe.active()
    assert sent == [{"alert_id": alert["id"], "status": "firing", "receiver": 0}]
    wait_for(lambda: receiver.requests, what="a delivery")
    req = receiver.requests[0]
    body, signed, stamp = req["body"], req["headers"][SIGNATURE_HEADER], \
        req["headers"][TIMESTAMP_HEADER]
    assert abs(int(stamp) - time.time()) < 60
    assert signed == signature(body, SECRET, int(stamp))
    assert verify(body, SECRET, signed, stamp)
    assert not verify(body + b" ", SECRET, signed, stamp)
    assert not verify(body, SECRET, signed, str(int(stamp) - 1))
    assert not verify(body, "another-key", signed, stamp)
    assert not verify(body, SECRET, signed, stamp, now=int(stamp) + 301)  # a replay, later
    assert verify(body, SECRET, signed, stamp, now=int(stamp) + 299)
    doc = json.loads(body)
    assert doc["status"] == "firing" and doc["alerts"][0]["fingerprint"] == alert["fingerprint"]
    assert doc["alerts"][0]["annotations"]["summary"] == alert["message"]
    [entry] = wait_for(lambda: webhook_log(pipe), what="the notification log")
    assert (entry["result"], entry["alert_id"], entry["model"]) == (
        "sent", alert["id"], "waf-behavioral")


def test_a_forged_delivery_message_is_never_signed(worker, redis_url, hook, celery_app,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Given someone who can publish to the broker, when they send delivery messages with a
    body of their own, then an unknown alert id, a malformed message or an unknown receiver is
    logged and recorded as dropped and nothing is posted; naming a real alert only re-sends
    that alert's true body, never theirs."""
    receiver = hook()
    pipe = Pipeline(redis_url)  # alerts recorded here, not delivered
    pipe.deploy("waf-behavioral")
    pipe.feed("waf-behavioral", 1000, 0.8)
    run_monitoring(pipe.svc)
    [alert] = pipe.active()
    forged = {"body": "forged", "model": "waf-behavioral", "severity": "info"}
    with caplog.at_level(logging.INFO):
        send(celery_app, {**forged, "alert_id": "0123456789ab", "status": "firing",
                          "receiver": 0})
        send(celery_app, {**forged, "alert_id": alert["id"], "status": "resolved",
                          "receiver": 0})
        send(celery_app, {**forged, "receiver": 0})
        send(celery_app, {**forged, "alert_id": alert["id"], "status": "firing",
                          "receiver": -1})
        send(celery_app, "forged")
        drops = wait_for(lambda: (d := [n for n in webhook_log(pipe)
                                        if n["result"] == "dropped"]) and len(d) == 5 and d,
                         what="five dropped deliveries")
    assert receiver.requests == []
    assert sorted(d["error"] for d in drops) == sorted([
        "no such firing alert (unknown, or resolved since)", "no such alert",
        "malformed delivery message", "receiver no longer configured",
        "receiver no longer configured"])
    assert len([r for r in caplog.records
                if r.getMessage().startswith("webhook delivery dropped")]) == 5

    send(celery_app, {**forged, "alert_id": alert["id"], "status": "firing", "receiver": 0})
    wait_for(lambda: receiver.requests, what="the real alert's delivery")
    req = receiver.requests[0]
    assert b"forged" not in req["body"]
    assert json.loads(req["body"])["alerts"][0]["annotations"]["summary"] == alert["message"]
    assert verify(req["body"], SECRET, req["headers"][SIGNATURE_HEADER],
                  req["headers"][TIMESTAMP_HEADER])


def test_a_resolved_alert_is_delivered_from_its_history(worker, redis_url, hook) -> None:
    """Given an alert that fired and was resolved, then the resolved delivery is built from
    the alert as it was resolved, and a late firing delivery of it is dropped."""
    receiver = hook()
    pipe, sent = fire_alert(redis_url)
    wait_for(lambda: len(receiver.requests) == 1, what="the firing delivery")
    pipe.feed("waf-behavioral", 5000, 0.99)
    run_monitoring(pipe.svc)
    assert [s["status"] for s in sent] == ["firing", "resolved"]
    wait_for(lambda: len(receiver.requests) == 2, what="the resolved delivery")
    req = receiver.requests[1]
    doc = json.loads(req["body"])
    assert doc["status"] == "resolved" and doc["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert verify(req["body"], SECRET, req["headers"][SIGNATURE_HEADER],
                  req["headers"][TIMESTAMP_HEADER])


def test_a_retry_is_signed_again_with_a_fresh_timestamp(worker, redis_url, hook) -> None:
    """Given a receiver that answers 500 once, then the retry carries a later timestamp and a
    new signature, and both verify at the time they were sent."""
    receiver = hook(fail_first=1, backoff_s="1.1")  # > 1 s: timestamps are whole seconds
    pipe, _ = fire_alert(redis_url)
    wait_for(lambda: len(receiver.requests) == 2, timeout=30, what="the retry")
    first, retry = receiver.requests
    stamps = [int(r["headers"][TIMESTAMP_HEADER]) for r in (first, retry)]
    assert stamps[1] > stamps[0]
    assert first["headers"][SIGNATURE_HEADER] != retry["headers"][SIGNATURE_HEADER]
    for req, stamp in zip((first, retry), stamps, strict=True):
        assert verify(req["body"], SECRET, req["headers"][SIGNATURE_HEADER], str(stamp),
                      now=stamp)
    # the first attempt's headers do not fit the retry's body
    assert not verify(retry["body"], SECRET, first["headers"][SIGNATURE_HEADER],
                      str(stamps[0]), now=stamps[0])
    results = wait_for(lambda: (r := [n["result"] for n in webhook_log(pipe)]) and
                       len(r) == 2 and r, what="two attempts logged")
    assert results == ["sent", "retrying"]


def test_verify_rejects_stale_future_and_malformed_timestamps() -> None:
    body = b'{"status": "firing"}'
    now = 1_700_000_000
    good = signature(body, SECRET, now)
    assert verify(body, SECRET, good, str(now), now=now)
    assert verify(body, SECRET, good, str(now), now=now + 300)
    assert not verify(body, SECRET, good, str(now), now=now + 301)
    assert not verify(body, SECRET, good, str(now), now=now - 301)
    assert verify(body, SECRET, good, str(now), tolerance_s=3600, now=now + 1000)
    stale = signature(body, SECRET, now - 1000)
    assert not verify(body, SECRET, stale, str(now - 1000), now=now)
    for stamp in ("", "abc", "-5", "1.5", "１７", None):  # noqa: RUF001 - fullwidth digits
        assert not verify(body, SECRET, good, stamp, now=now)
    assert not verify(body, SECRET, None, str(now), now=now)
    assert not verify(body, SECRET, "sha256=" + "0" * 64, str(now), now=now)


@pytest.mark.parametrize("url", [
    "http://[bad/token123",
    "http://127.0.0.1:abc/hook/token123",
    "http://user:token123@127.0.0.1:1/hook",
    "htp://127.0.0.1/hook/token123",
])
def test_an_unusable_webhook_url_is_a_recorded_failure_without_its_token(
        worker, redis_url, monkeypatch, url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Given a webhook URL that cannot be parsed or used, then its delivery fails at once (no
    retry can help), recorded in the notification log and logged, and neither shows the path,
    query or credentials (the token)."""
    monkeypatch.setenv("MLOPS_WEBHOOK_URLS", url)
    monkeypatch.setenv("MLOPS_WEBHOOK_ALLOW_HTTP", "true")  # unusable for other reasons
    monkeypatch.setenv("MLOPS_WEBHOOK_SECRET", SECRET)
    assert "token123" not in receiver_name(url)
    with caplog.at_level(logging.INFO):
        pipe, _ = fire_alert(redis_url)
        [entry] = wait_for(lambda: webhook_log(pipe), what="the failed attempt")
        wait_for(lambda: any(r.getMessage() == "webhook delivery failed"
                             for r in caplog.records), what="the failure logged")
    assert entry["result"] == "failed" and entry["attempt"] == 1
    assert entry["error"] and entry["receiver"] == receiver_name(url)
    assert "token123" not in json.dumps(webhook_log(pipe))
    assert "token123" not in caplog.text
    for record in caplog.records:
        assert "token123" not in json.dumps(record.__dict__, default=str)


# --- https only, final answers, no redirects ---------------------------------------------------

class Answering:
    """A real HTTP receiver answering each POST with the next status of ``statuses`` (the last
    one from then on), with ``Location: <location>`` on a 3xx; records every request's path."""

    def __init__(self, statuses: list[int], location: str | None = None) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.paths.append(self.path)
                status = statuses[min(len(outer.paths), len(statuses)) - 1]
                self.send_response(status)
                if location and 300 <= status < 400:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/hook/token123"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answering(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Any:
    """``make(statuses, location)`` -> (receiver, pipeline with one firing alert, its id): the
    alert recorded, not yet delivered, the receiver the only webhook (http allowed)."""
    made: list[Answering] = []

    def make(statuses: list[int], location: str | None = None) -> tuple[Answering, Pipeline,
                                                                        str]:
        receiver = Answering(statuses, location)
        made.append(receiver)
        monkeypatch.setenv("MLOPS_WEBHOOK_URLS", receiver.url)
        monkeypatch.setenv("MLOPS_WEBHOOK_ALLOW_HTTP", "true")  # a local http receiver
        pipe = Pipeline(redis_url)
        pipe.deploy("waf-behavioral")
        pipe.feed("waf-behavioral", 1000, 0.8)
        run_monitoring(pipe.svc)
        [alert] = pipe.active()
        return receiver, pipe, alert["id"]
    yield make
    for receiver in made:
        receiver.close()


def attempt(pipe: Pipeline, alert_id: str, number: int = 0) -> dict[str, Any]:
    """One delivery attempt, as the worker's task makes it (it retries when this raises)."""
    return deliver(pipe.svc.settings, pipe.svc.alerts.store,
                   delivery_message(alert_id, "firing", 0), attempt=number)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_a_4xx_answer_is_final_recorded_with_its_status(answering, status: int) -> None:
    """Given a receiver answering a 4xx other than 408 and 429, when the worker's delivery
    attempt runs, then it returns a failure instead of raising (the task retries only on a
    raise), and the notification log records it as failed, final, with the status."""
    receiver, pipe, alert_id = answering([status])
    result = attempt(pipe, alert_id)
    assert result["result"] == "failed" and result["http_status"] == status
    assert len(receiver.paths) == 1
    [entry] = webhook_log(pipe)
    assert (entry["result"], entry["final"], entry["http_status"], entry["attempt"]) == (
        "failed", True, status, 1)
    assert entry["error"].startswith(f"HTTP {status}") and "token123" not in json.dumps(entry)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_5xx_408_and_429_are_retried_then_sent(answering, status: int) -> None:
    """Given a receiver answering 5xx, 408 or 429 once and then 200, then the first attempt
    raises DeliveryError (retried by the task), logged as retrying with the status, and the
    next attempt is sent."""
    receiver, pipe, alert_id = answering([status, 200])
    with pytest.raises(DeliveryError) as caught:
        attempt(pipe, alert_id)
    assert caught.value.retryable and caught.value.http_status == status
    assert attempt(pipe, alert_id, 1) == {"result": "sent", "http_status": 200}
    assert len(receiver.paths) == 2
    sent, retrying = webhook_log(pipe)
    assert (retrying["result"], retrying["http_status"]) == ("retrying", status)
    assert (sent["result"], sent["http_status"]) == ("sent", 200)


def test_a_redirect_is_never_followed_and_is_final(worker, answering) -> None:
    """Given a receiver answering 307 (which keeps the method and body) with a Location on
    the same server, when the real worker delivers, then the POST is never re-sent, neither to
    the Location nor again to the URL, and the failure is recorded as final with the status."""
    from mlops_tasks.workers.runtime import send_webhook

    receiver, pipe, alert_id = answering([307], location="/elsewhere/stolen")
    send_webhook(0, {"alert_id": alert_id, "status": "firing"})
    [entry] = wait_for(lambda: webhook_log(pipe), what="the failed delivery")
    assert (entry["result"], entry["final"], entry["http_status"]) == ("failed", True, 307)
    assert receiver.paths == ["/hook/token123"]
    assert "/elsewhere/stolen" not in receiver.paths


def test_a_retry_that_runs_out_is_not_final(answering) -> None:
    """Given a receiver that keeps answering 503 and no retries left, then the delivery fails
    recorded as not final (out of attempts), with the last status."""
    receiver, pipe, alert_id = answering([503])
    pipe.svc.settings = pipe.svc.settings.replace(webhook_max_retries=0)
    result = attempt(pipe, alert_id)
    assert result == {"result": "failed", "error": "HTTP 503", "http_status": 503}
    [entry] = webhook_log(pipe)
    assert (entry["final"], entry["http_status"]) == (False, 503)
    assert len(receiver.paths) == 1


@pytest.mark.parametrize(("env", "variable"), [
    ({"MLOPS_WEBHOOK_URLS": "https://hooks.example.com/T/ok,http://hooks.example.com/T/token9"},
     "MLOPS_WEBHOOK_URLS"),
    ({"MLOPS_WEBHOOK_URLS": "HTTP://hooks.example.com/T/token9"}, "MLOPS_WEBHOOK_URLS"),
    ({"MLOPS_WEBHOOK_URLS": "http://hooks.example.com/T/token9", "MLOPS_WEBHOOK_FORMAT": "slack"},
     "MLOPS_WEBHOOK_URLS"),
    ({"MLOPS_ALERT_CHANNELS": "slack=http://hooks.example.com/T/token9"},
     "MLOPS_ALERT_CHANNELS"),
    ({"MLOPS_ALERT_CHANNELS": "alertmanager=http://am.example:9093/token9"},
     "MLOPS_ALERT_CHANNELS"),
])
def test_a_plain_http_webhook_is_refused_when_settings_are_read(env: dict[str, str],
                                                                variable: str) -> None:
    """Given a plain http:// webhook URL, then reading the settings (what every worker, beat,
    server and command does first) fails with one line naming the variable, the receiver's
    origin and the way out, never the URL's path (the token); MLOPS_WEBHOOK_ALLOW_HTTP=true
    accepts it."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert message.startswith(f"{variable}: http") and "\n" not in message
    assert "https://" in message and "MLOPS_WEBHOOK_ALLOW_HTTP=true" in message
    assert "token9" not in message
    allowed = Settings.from_env({**env, "MLOPS_WEBHOOK_ALLOW_HTTP": "true"})
    assert allowed.webhook_allow_http
    assert Settings.from_env({k: v.replace("http://", "https://").replace("HTTP://", "https://")
                              for k, v in env.items()})


def test_config_check_reports_a_plain_http_webhook(cli, monkeypatch) -> None:
    """Given a plain http:// webhook URL, then `mlops config check` exits 1 and names it,
    without its token or a traceback."""
    monkeypatch.setenv("MLOPS_WEBHOOK_URLS", "http://hooks.example.com/T/token9")
    result = cli("config", "check", expect=1)
    out = result.stdout + result.stderr
    assert "MLOPS_WEBHOOK_URLS: http://hooks.example.com is plain http://" in out
    assert "token9" not in out and "Traceback" not in out
    monkeypatch.setenv("MLOPS_WEBHOOK_ALLOW_HTTP", "true")
    cli("config", "check")


def test_a_plain_http_url_is_refused_at_send_time_too(answering) -> None:
    """Given settings built without the check (a channel of one's own, or code building
    Settings itself), then the transport refuses a plain http:// URL, final, before anything
    is sent."""
    receiver, pipe, alert_id = answering([200])
    pipe.svc.settings = pipe.svc.settings.replace(webhook_allow_http=False)
    result = attempt(pipe, alert_id)
    assert result["result"] == "failed" and "https://" in result["error"]
    assert receiver.paths == []
    [entry] = webhook_log(pipe)
    assert entry["final"] is True and "http_status" not in entry
