"""Webhook alerts cannot be forged: the delivery message names a stored alert, the worker builds
and signs the body, the signature covers a fresh timestamp, and a broken URL is a recorded
failure that never shows its token. A real worker, a real HTTP receiver, a real broker."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from mlops_tasks.alerts.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    receiver_name,
    signature,
    verify,
)
from mlops_tasks.monitoring.performance import run_monitoring
from mlops_tasks.queues import MONITORING_QUEUE, TASK_DELIVER_WEBHOOK

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
