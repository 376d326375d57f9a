"""Tracked data: a client's metadata leaves the detector with the fields named in
MLOPS_REDACT_FIELDS already replaced by keyed hashes, is kept only in dead letters, and dead
letters only for MLOPS_DEAD_LETTER_RETENTION_DAYS or until `mlops dead-letters purge`. Real
Redis servers, a real worker, the real client."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from pathlib import Path

import pytest
import redis

from mlops_tasks import deadletters, keys
from mlops_tasks.client import MonitoringClient
from mlops_tasks.client.redact import Redactor, pseudonym
from mlops_tasks.errors import ConfigError
from mlops_tasks.maintenance.cleanup import cleanup
from mlops_tasks.queues import EVENTS_QUEUE
from mlops_tasks.settings import Settings
from mlops_tasks.timebuckets import DAY_S

from .conftest import wait_for
from .pipeline_support import Pipeline
from .redis_server import RedisServer

KEY = "pseudonym-key-for-tests"
EMAIL = "alice.raw@example.com"
ADDRESS = "203.0.113.77"
REDACTING = {"MLOPS_REDACT_FIELDS": "email, request.client_ip", "MLOPS_PSEUDONYM_KEY": KEY}
METADATA = {"email": EMAIL, "request": {"client_ip": ADDRESS, "path": "/cart"}, "n": 3}


def everything_in(client: redis.Redis) -> bytes:
    """Every value held by this Redis, broker messages decoded (kombu base64-encodes bodies)."""
    out: list[bytes] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"list":
            for item in client.lrange(key, 0, -1):
                out.append(item)
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    out.append(base64.b64decode(json.loads(item)["body"]))
        elif kind == b"hash":
            out.extend(b"%s=%s" % kv for kv in client.hgetall(key).items())
        elif kind == b"zset":
            out.extend(m for m, _ in client.zrange(key, 0, -1, withscores=True))
        elif kind == b"set":
            out.extend(client.smembers(key))
        elif kind == b"stream":
            out.extend(json.dumps(e, default=repr).encode() for e in client.xrange(key))
    return b"\n".join(out)


# ------------------------------------------------------------------------ redaction at the client

def test_the_redactor_hashes_named_fields_top_level_and_dotted_without_changing_the_caller(
        ) -> None:
    """Given top-level and dotted field names, then their values (of any type) become keyed
    hashes, equal values equal hashes, other fields and the caller's dict unchanged, and a
    field that is absent (or a path through a non-object) is left alone."""
    redact = Redactor(["email", "request.client_ip", "user", "missing.deep"], KEY.encode())
    given = {**METADATA, "user": {"id": 7}, "missing": "not an object"}
    out = redact(given)
    assert out["email"] == pseudonym(EMAIL, KEY.encode()) != pseudonym(EMAIL, b"other-key")
    assert out["email"].startswith("hmac-sha256:") and len(out["email"]) == 12 + 64
    assert out["request"] == {"client_ip": pseudonym(ADDRESS, KEY.encode()), "path": "/cart"}
    assert out["user"] == pseudonym({"id": 7}, KEY.encode())
    assert (out["n"], out["missing"]) == (3, "not an object")
    assert given == {**METADATA, "user": {"id": 7}, "missing": "not an object"}
    assert redact({"email": EMAIL}) == {"email": out["email"]}  # stable under one key
    assert redact({"n": 1}) == {"n": 1}


def test_without_a_pseudonym_key_a_random_key_is_drawn_once_per_process() -> None:
    """Given MLOPS_REDACT_FIELDS without MLOPS_PSEUDONYM_KEY, then values are still hashed,
    stable within the process, under a key that is not the empty one."""
    first = Redactor.from_settings(Settings.from_env({"MLOPS_REDACT_FIELDS": "email"}))
    second = Redactor.from_settings(Settings.from_env({"MLOPS_REDACT_FIELDS": "email"}))
    assert first is not None and second is not None
    assert first({"email": EMAIL}) == second({"email": EMAIL})
    assert first({"email": EMAIL})["email"] != pseudonym(EMAIL, b"")
    assert Redactor.from_settings(Settings.from_env({})) is None


@pytest.mark.parametrize("value", [" , ", "a..b", ".a", "a.", "x" * 300])
def test_a_bad_redact_fields_value_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^MLOPS_REDACT_FIELDS=.*expected metadata field"):
        Settings.from_env({"MLOPS_REDACT_FIELDS": value})


def test_the_message_on_the_broker_never_holds_a_redacted_value(tmp_path: Path) -> None:
    """Given a client with MLOPS_REDACT_FIELDS, when it records a prediction whose metadata
    holds those fields and flushes to a broker no worker reads, then the message waiting in the
    queue (and the journal entry, and anything else in that Redis) holds the keyed hashes and
    never the raw values."""
    server = RedisServer(tmp_path / "redis").start()
    client = MonitoringClient(server.url, redis_url=server.url, flush_interval_ms=60_000,
                              settings=Settings.from_env(REDACTING))
    try:
        client.record_prediction("n1-detector", 0.7, metadata=METADATA)
        assert client.flush(30)
        broker = redis.Redis.from_url(server.url)
        [message] = broker.lrange(EVENTS_QUEUE, 0, -1)
        body = base64.b64decode(json.loads(message)["body"])
        stored = everything_in(broker)
    finally:
        client.close()
        server.stop()
    for seen in (body, stored):
        assert EMAIL.encode() not in seen and ADDRESS.encode() not in seen
        assert pseudonym(EMAIL, KEY.encode()).encode() in seen
        assert pseudonym(ADDRESS, KEY.encode()).encode() in seen
        assert b"/cart" in seen  # the fields not named are sent as they are


def test_a_dead_letter_holds_only_the_redacted_metadata(worker, redis_url: str,
                                                        r: redis.Redis, raw: redis.Redis,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a client with MLOPS_REDACT_FIELDS, when it records a prediction for a model no
    one registered, then the real worker dead-letters it with the metadata as sent: the keyed
    hashes, never the raw values, and nothing else in Redis holds them either."""
    for name, value in REDACTING.items():
        monkeypatch.setenv(name, value)
    with MonitoringClient(flush_interval_ms=50) as client:
        client.record_prediction("ghost-model", 0.7, metadata=METADATA)
    [letter] = wait_for(lambda: deadletters.read(r, [], "ghost-model"), what="the dead letter")
    metadata = letter["event"]["metadata"]
    assert metadata == {"email": pseudonym(EMAIL, KEY.encode()),
                        "request": {"client_ip": pseudonym(ADDRESS, KEY.encode()),
                                    "path": "/cart"}, "n": 3}
    stored = everything_in(raw)
    assert EMAIL.encode() not in stored and ADDRESS.encode() not in stored


# --------------------------------------------------------------- dead letters: retention and purge

def letter(model: str, at: float) -> str:
    return json.dumps({"at": at, "model": model, "batch_id": "b", "index": 0, "reason": "x",
                       "event": {"score": 0.5, "metadata": {"note": "kept"}}})


def test_dead_letters_go_after_their_own_retention(pipe: Pipeline, r: redis.Redis) -> None:
    """Given dead letters 40, 10 and 0 days old, then the cleanup job (whose cutoff is
    MLOPS_RETENTION_DAYS, 90 days) removes those older than MLOPS_DEAD_LETTER_RETENTION_DAYS
    (30 by default; 7 here next), and reports that cutoff; a shorter --older-than still
    wins."""
    model = "n1-detector"
    now = pipe.clock.now
    for days in (40, 10, 0):
        r.lpush(keys.dead_letters(model), letter(model, now - days * DAY_S))
        r.lpush(keys.dead_letters(keys.UNROUTED), letter("ghost", now - days * DAY_S))
    report = cleanup(pipe.svc, 90 * DAY_S)
    assert report["deleted"]["dead_letters"] == 2
    assert report["dead_letter_cutoff"] > report["cutoff"]
    assert r.llen(keys.dead_letters(model)) == r.llen(keys.dead_letters(keys.UNROUTED)) == 2
    pipe.svc.settings = pipe.svc.settings.replace(dead_letter_retention_days=7)
    assert cleanup(pipe.svc, 90 * DAY_S)["deleted"]["dead_letters"] == 2
    assert r.llen(keys.dead_letters(model)) == 1
    pipe.svc.settings = pipe.svc.settings.replace(dead_letter_retention_days=365)
    r.rpush(keys.dead_letters(model), letter(model, now - 2 * DAY_S))  # newest first
    report = cleanup(pipe.svc, 1 * DAY_S)
    assert report["deleted"]["dead_letters"] == 1
    assert report["dead_letter_cutoff"] == report["cutoff"]


def test_purge_deletes_one_models_dead_letters_or_all_and_says_what(
        pipe: Pipeline, r: redis.Redis, cli, caplog: pytest.LogCaptureFixture) -> None:
    """Given dead letters of two models and of an unregistered name, when `mlops dead-letters
    purge --model` names one model, then only its letters go and it prints how many; an
    unregistered name removes only its letters among the unrouted ones; without --model,
    everything goes. Each purge is logged with who ran it; the counters of rejected events
    stay."""
    now = pipe.clock.now
    for model in ("n1-detector", "waf-behavioral"):
        for _ in range(3):
            r.lpush(keys.dead_letters(model), letter(model, now))
        r.hset(keys.counters(model), keys.F_DEAD_LETTERS, 3)
    for name in ("ghost", "ghost", "other"):
        r.lpush(keys.dead_letters(keys.UNROUTED), letter(name, now))

    with caplog.at_level(logging.INFO, logger="mlops.maintenance"):
        doc = cli.json("dead-letters", "purge", "--model", "n1-detector",
                       env={"MLOPS_ACTOR": "ops-anna"})
    assert doc == {"model": "n1-detector", "removed": {"n1-detector": 3}, "total": 3,
                   "actor": "ops-anna"}
    assert r.llen(keys.dead_letters("n1-detector")) == 0
    assert r.llen(keys.dead_letters("waf-behavioral")) == 3
    [record] = [x for x in caplog.records if x.getMessage() == "Dead letters purged"]
    assert (record.__dict__["actor"], record.__dict__["total"]) == ("ops-anna", 3)

    out = cli("dead-letters", "purge", "--model", "ghost").stdout
    assert out.strip() == "removed 2 dead letters of ghost"
    assert [x["model"] for x in deadletters.read(r, [], None)] == ["other"]

    out = cli("dead-letters", "purge").stdout
    assert out.strip() == ("removed 1 dead letters of _unrouted, 3 dead letters of "
                           "waf-behavioral")
    assert cli("dead-letters", "purge").stdout.strip() == "removed no dead letters"
    assert cli.json("dead-letters")["dead_letters"] == []
    assert cli.json("dead-letters")["counts"]["n1-detector"] == 3  # counters of rejections


def test_the_dead_letters_listing_still_works_beside_purge(pipe: Pipeline, r: redis.Redis,
                                                           cli) -> None:
    """`mlops dead-letters [--model M] [--limit N] [--json]` lists as before."""
    r.lpush(keys.dead_letters("n1-detector"), letter("n1-detector", pipe.clock.now))
    doc = cli.json("dead-letters", "--model", "n1-detector", "--limit", "5")
    assert [x["reason"] for x in doc["dead_letters"]] == ["x"]
    assert "n1-detector" in cli("dead-letters").stdout
