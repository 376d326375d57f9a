"""Hostile and malformed messages: every one is dead-lettered with its reason, none takes a worker
down, none is delivered again forever, and none makes the good events around it disappear."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from celery import Celery

from mlops_tasks import deadletters, keys
from mlops_tasks.celery_config import producer_config
from mlops_tasks.client import MonitoringClient
from mlops_tasks.errors import ValidationError
from mlops_tasks.ingest import codec, events, journal
from mlops_tasks.ingest.pipeline import Ingestor
from mlops_tasks.ingest.store import DUPLICATE, PARTIAL, UNROUTED_NAMES_CAP, KeyTypeError
from mlops_tasks.queues import EVENTS_QUEUE, TASK_INGEST_LABELS, TASK_INGEST_PREDICTIONS
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings
from mlops_tasks.windows import WindowReader

from .conftest import wait_for
from .processes import WorkerProcess
from .redis_server import RedisServer
from .test_registry import register_catalogue

MODEL = "n1-detector"


def nested(depth: int) -> Any:
    """A value nested ``depth`` levels deep, alternating objects and lists."""
    value: Any = 1
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def predictions(batch_id: str, scores: Any, **cols: Any) -> dict[str, Any]:
    n = cols.pop("n", len(scores) if isinstance(scores, list) else 1)
    return {"v": 1, "kind": "predictions", "batch_id": batch_id,
            "model": cols.pop("model", MODEL), "n": n, "score": scores, **cols}


def letters(raw: redis.Redis, model: str = MODEL) -> list[dict[str, Any]]:
    return [json.loads(x) for x in raw.lrange(keys.dead_letters(model), 0, -1)]


# ----------------------------------------------------------------------------- a real worker

@pytest.mark.slow
def test_a_prefork_worker_survives_poison_messages_and_keeps_ingesting(tmp_path: Path) -> None:
    """Given a prefork worker, when messages arrive with metadata nested 900 levels deep (which
    used to kill the main process while pickling for the pool), with n = 10**7 and a scalar
    score, and with metadata deeper than the metadata limit, then each becomes one summary
    letter, the worker stays alive, and a good batch sent after them is counted."""
    server = RedisServer(tmp_path / "redis").start()
    worker = None
    try:
        registry = Registry(redis.Redis.from_url(server.url, decode_responses=True),
                            Settings.from_env({}))
        register_catalogue(registry)
        worker = WorkerProcess(server.url, tmp_path, "--concurrency", "1",
                               MLOPS_WORKER_MAX_MEMORY_MB="1536").start()
        producer = Celery("hostile", set_as_current=False)
        producer.config_from_object(producer_config(Settings.from_env({}), server.url))
        now = time.time()

        # when
        poison = [
            predictions("deep", [0.5], metadata=[nested(900)], timestamp=now),
            predictions("huge-n", 0.5, n=10 ** 7, timestamp=now),
            predictions("deep-meta", [0.5], metadata=[nested(12)], timestamp=now),
        ]
        for body in poison:
            producer.send_task(TASK_INGEST_PREDICTIONS, args=[body], queue=EVENTS_QUEUE)
        good = predictions("good", [0.2, 0.9], actual=[0, 1], timestamp=now)
        producer.send_task(TASK_INGEST_PREDICTIONS, args=[good], queue=EVENTS_QUEUE)

        # then
        reader = WindowReader(redis.Redis.from_url(server.url), Settings.from_env({}))
        wait_for(lambda: reader.totals(MODEL, "1.0.0").get("n") == 2, timeout=60,
                 what="the good batch after the poison")
        raw = redis.Redis.from_url(server.url)
        found = wait_for(lambda: len(ls := letters(raw)) == 3 and ls, what="three summary letters")
        by_batch = {x["batch_id"]: x for x in found}
        assert set(by_batch) == {"deep", "huge-n", "deep-meta"}
        assert all(x["summary"] and x["index"] is None for x in found)
        assert "nested deeper than 32 levels" in by_batch["deep"]["reason"]
        assert by_batch["huge-n"]["reason"] == \
            "n: expected at most 10000 events per message, got 10000000"
        assert by_batch["huge-n"]["events"] == 10 ** 7
        assert "metadata: expected at most 8 levels" in by_batch["deep-meta"]["reason"]
        assert int(raw.hget(keys.counters(MODEL), "dead_letters")) == 3
        assert worker.proc is not None and worker.proc.poll() is None, worker.log()[-3000:]
        assert "RecursionError" not in worker.log()
        # every message was acknowledged: nothing waits to be delivered again
        assert raw.llen(EVENTS_QUEUE) == 0
        assert raw.hlen("unacked") == 0
        # the pool child runs under the address-space ceiling
        ceiling = str(1536 * 1024 * 1024)
        limited = [pid for pid in _descendants(worker.proc.pid) if ceiling in _address_space(pid)]
        assert limited, "no pool child under the ceiling"
    finally:
        if worker:
            worker.stop()
        server.stop()


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out.append(int(child))
            out.extend(_descendants(int(child)))
    return out


def _address_space(pid: int) -> str:
    try:
        limits = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return ""
    return next((x for x in limits.splitlines() if x.startswith("Max address space")), "")


# ----------------------------------------------------------------------------- the decoder

def test_the_decoder_turns_oversized_and_deep_bodies_into_small_stand_ins() -> None:
    """Given bodies over the byte limit or nested past the depth limit, when the worker's JSON
    decoder reads them, then it returns a small task body naming the batch and the reason,
    and ordinary bodies decode unchanged."""
    batch = predictions("b1", [0.5], metadata=[nested(40)])
    deep = json.dumps([[batch], {}, {}])
    out = codec.bounded_loads(deep.encode())
    [[stand_in], _, _] = out
    assert stand_in["batch_id"] == "b1" and stand_in["model"] == MODEL
    assert stand_in[events.REJECTED_KEY] == "message: nested deeper than 32 levels"

    big = ('[[{"v": 1, "model": "n1-detector", "batch_id": "big", "n": 3, "pad": "'
           + "x" * events.MAX_MESSAGE_BYTES + '"}], {}, {}]')
    [[stand_in], _, _] = codec.bounded_loads(big.encode())
    assert stand_in["batch_id"] == "big" and stand_in["n"] == 3
    assert stand_in[events.REJECTED_KEY].startswith("message: ")
    assert "more than the limit of 33554432" in stand_in[events.REJECTED_KEY]

    too_deep_for_json = "[" * 100_000 + "]" * 100_000
    [[stand_in], _, _] = codec.bounded_loads(too_deep_for_json)
    assert "nested deeper" in stand_in[events.REJECTED_KEY]

    fine = [[predictions("ok", [0.1, 0.2], metadata=[{"route": "/a"}, None])], {}, {}]
    assert codec.bounded_loads(json.dumps(fine).encode()) == fine


def test_a_stand_in_becomes_one_summary_letter(ingestor: Ingestor, raw: redis.Redis) -> None:
    """Given the stand-in of a refused message, when it is ingested, then one summary letter
    with the reason is stored and nothing is counted."""
    [[stand_in], _, _] = codec.stand_in("message: too big", {"model": MODEL, "batch_id": "x",
                                                             "n": 500})
    result = ingestor.ingest_predictions(stand_in)
    assert result["dead_letters"] == 1 and result["accepted"] == 0
    [letter] = letters(raw)
    assert letter["reason"] == "message: too big" and letter["events"] == 500


# ----------------------------------------------------------------------------- limits

def test_a_huge_n_is_refused_without_building_it(ingestor: Ingestor, raw: redis.Redis,
                                                 reader: WindowReader) -> None:
    """Given a 300-byte message claiming 10**7 events with a scalar score, when it is
    ingested, then it is one summary letter (the scalar is never broadcast)."""
    result = ingestor.ingest_predictions(predictions("n7", 0.5, n=10 ** 7))
    assert result == {"model": MODEL, "batch_id": "n7", "applied": True, "accepted": 0,
                      "dead_letters": 1}
    [letter] = letters(raw)
    assert letter["summary"] is True and letter["events"] == 10 ** 7
    assert reader.totals(MODEL, "1.0.0").get("n", 0) == 0


def test_too_many_time_buckets_in_one_message_is_one_summary_letter(
        ingestor: Ingestor, raw: redis.Redis, reader: WindowReader) -> None:
    """Given 1,000 events one minute apart (one Lua call would update 1,000 minute buckets and
    stall Redis), when ingested, then the message is refused as one summary letter."""
    now = time.time()
    stamps = [now - 60.0 * i for i in range(1000)]
    result = ingestor.ingest_predictions(predictions("spread", [0.5] * 1000, timestamp=stamps))
    assert result["dead_letters"] == 1 and result["accepted"] == 0
    [letter] = letters(raw)
    assert letter["reason"] == ("timestamp: expected events in at most 256 distinct (version, "
                                "minute) buckets per message, got 1000")
    assert reader.totals(MODEL, "1.0.0").get("n", 0) == 0


def test_the_client_splits_a_backfill_into_messages_within_the_limits(
        worker: Any, registry: Registry, redis_url: str, raw: redis.Redis) -> None:
    """Given a detector backfilling 1,200 predictions spread over 1,200 minutes, when the
    client sends them, then it splits them into messages of at most 128 buckets (half the
    worker's limit: the worker counts buckets on timestamps rebuilt from milliseconds, which
    can fall into the previous minute) and every event is counted, none dead-lettered."""
    register_catalogue(registry)
    now = time.time()
    with MonitoringClient(flush_interval_ms=10_000, batch_size=100_000) as client:
        for i in range(1200):
            client.record_prediction(MODEL, 0.4, timestamp=now - 60.0 * i)
        assert client.flush(30)
        assert client.stats()["batches_sent"] == 10  # ceil(1200 / 128)
    reader = WindowReader(raw, registry.settings)
    wait_for(lambda: reader.totals(MODEL, "1.0.0").get("n") == 1200, what="every event")
    assert letters(raw) == []


def test_the_client_splits_metadata_heavy_batches_within_the_container_limit(
        worker: Any, registry: Registry, raw: redis.Redis) -> None:
    """Given 500 events whose metadata holds 602 objects and lists each (301,000 in all, more
    than a message may hold), when the client sends them, then they go in two messages and all
    are counted, none dead-lettered."""
    register_catalogue(registry)
    metadata = {"spans": [[] for _ in range(600)]}
    with MonitoringClient(flush_interval_ms=10_000, batch_size=100_000) as client:
        for _ in range(500):
            client.record_prediction(MODEL, 0.4, metadata=metadata)
        metadata["spans"].append("changed after recording: not what is sent")
        assert client.flush(30)
        assert client.stats()["batches_sent"] == 2
    reader = WindowReader(raw, registry.settings)
    wait_for(lambda: reader.totals(MODEL, "1.0.0").get("n") == 500, what="every event")
    assert letters(raw) == []


def test_the_client_refuses_deep_or_large_metadata(redis_url: str) -> None:
    """Given metadata nested 900 levels, 9 levels, or 3 KB of JSON, when recorded, then the
    client raises a ValidationError (a ValueError) naming metadata, and sends nothing."""
    with MonitoringClient(flush_interval_ms=10_000) as client:
        for metadata, message in [
            ({"a": nested(900)}, "metadata: expected at most 8 levels of nesting"),
            ({"a": nested(8)}, "metadata: expected at most 8 levels of nesting"),
            ({"blob": "x" * 3000}, "metadata: expected at most 2048 bytes of JSON, got 3011"),
        ]:
            with pytest.raises(ValidationError, match=message):
                client.record_prediction(MODEL, 0.5, metadata=metadata)
        client.record_prediction(MODEL, 0.5, metadata={"a": nested(7)})  # within the limit
        assert client.stats()["recorded"] == 1


# ----------------------------------------------------------------------------- dead letters

def test_ten_thousand_bad_events_are_all_dead_lettered(ingestor: Ingestor, raw: redis.Redis,
                                                       registry: Registry) -> None:
    """Given a full 10,000-event batch for an unregistered model (its LPUSH used to exceed
    Lua's unpack limit and lose every letter), when ingested, then all 10,000 are
    dead-lettered and counted under the name given."""
    result = ingestor.ingest_predictions(predictions("unknown", [0.5] * 10_000,
                                                     model="fraud-v2"))
    assert result["dead_letters"] == 10_000 and result["applied"] is True
    assert raw.llen(keys.dead_letters(keys.UNROUTED)) == 10_000
    assert deadletters.counts(raw, registry.model_names())["fraud-v2"] == 10_000


def test_a_mostly_bad_batch_keeps_its_good_events_and_every_letter(
        ingestor: Ingestor, raw: redis.Redis, reader: WindowReader) -> None:
    """Given 9,000 events of which 100 are valid, when ingested, then the 100 are counted, the
    8,900 others are dead letters, and the counter agrees."""
    scores = [0.5 if i % 90 == 0 else 7.0 for i in range(9000)]
    result = ingestor.ingest_predictions(predictions("mostly-bad", scores))
    assert result["accepted"] == 100 and result["dead_letters"] == 8900
    assert reader.totals(MODEL, "1.0.0")["n"] == 100
    assert raw.llen(keys.dead_letters(MODEL)) == 8900
    assert int(raw.hget(keys.counters(MODEL), "dead_letters")) == 8900
    # a redelivery changes nothing
    again = ingestor.ingest_predictions(predictions("mostly-bad", scores))
    assert again["applied"] is False
    assert raw.llen(keys.dead_letters(MODEL)) == 8900


def test_a_key_of_the_wrong_type_stops_the_batch_before_any_write(
        ingestor: Ingestor, raw: redis.Redis, reader: WindowReader) -> None:
    """Given a key the apply script writes to holding the wrong type, when a batch is ingested,
    then nothing at all is written (the script checks every key first) and the error is a
    Redis error the task retries; once the key is repaired, the retry applies the batch once."""
    raw.set(keys.counters(MODEL), "not a hash")
    batch = predictions("ab12cd34ef56.1", [7.0, 0.5])  # one bad event: a counter write
    with pytest.raises(KeyTypeError, match="holds a string, expected a hash"):
        ingestor.ingest_predictions(batch)
    assert reader.totals(MODEL, "1.0.0").get("n", 0) == 0
    assert raw.llen(keys.dead_letters(MODEL)) == 0
    raw.delete(keys.counters(MODEL))
    result = ingestor.ingest_predictions(batch)
    assert result["applied"] is True and result["dead_letters"] == 1
    assert ingestor.ingest_predictions(batch)["applied"] is False
    assert reader.totals(MODEL, "1.0.0")["n"] == 1
    assert raw.llen(keys.dead_letters(MODEL)) == 1


def test_a_write_that_fails_midway_is_never_counted_twice(ingestor: Ingestor, raw: redis.Redis,
                                                         reader: WindowReader) -> None:
    """Given a batch whose last write fails inside the script (a command Redis refuses), when
    it is applied, then it is marked applied all the same, counted as a partial batch, and a
    redelivery adds nothing."""
    batch_id = "ab12cd34ef56.7"
    cmds = [["HINCRBY", keys.total(MODEL, "1.0.0"), "n", 1], ["HINCRBY", "x", "y", "not a number"]]
    done = ingestor.store.apply(MODEL, batch_id, cmds)
    assert done.status == PARTIAL and "not an integer" in (done.error or "")
    assert ingestor.store.apply(MODEL, batch_id, cmds).status == DUPLICATE
    assert reader.totals(MODEL, "1.0.0")["n"] == 1
    assert int(raw.hget(keys.counters(MODEL), "partial_batches")) == 1


# ----------------------------------------------------------------------------- names

@pytest.mark.parametrize("name", ["fraud\n", "n1-detector\n", "Fraud", "x" * 65, ""])
def test_names_must_match_in_full(name: str, redis_url: str) -> None:
    """Given a model name with a trailing newline (which `$` used to accept) or otherwise
    invalid, when a client records with it, then it is refused naming the field."""
    with MonitoringClient(flush_interval_ms=10_000) as client, \
            pytest.raises(ValueError, match="model: expected a model name"):
        client.record_prediction(name, 0.5)


def test_rejected_names_are_escaped_and_bounded(ingestor: Ingestor, raw: redis.Redis,
                                                registry: Registry, cli: Any) -> None:
    """Given batches for names carrying a terminal escape sequence and a newline, and for
    1,100 other unknown names, when ingested and shown, then the names are stored escaped,
    at most 1,000 are kept, and the human table shows no control character."""
    title = "evil\x1b]0;pwned\x07\nforged row"
    ingestor.ingest_predictions(predictions("t1", [0.5] * 5, model=title))
    for i in range(UNROUTED_NAMES_CAP + 100):
        ingestor.ingest_predictions(predictions(f"u{i}", [0.5], model=f"ghost-{i}"))
    assert raw.zcard(keys.unrouted_names()) == UNROUTED_NAMES_CAP
    counts = deadletters.counts(raw, registry.model_names())
    escaped = "evil\\x1b]0;pwned\\x07\\nforged row"
    assert counts[escaped] == 5  # the largest count is kept
    shown = cli("dead-letters", "--limit", "2000").output
    assert "\x1b" not in shown and "\x07" not in shown
    assert not any(line.startswith("forged row") for line in shown.splitlines())
    assert escaped in shown


# ----------------------------------------------------------------------------- journal

def test_journal_replay_dead_letters_what_fails_validation(ingestor: Ingestor,
                                                           raw: redis.Redis) -> None:
    """Given journaled batches that break a limit (deep metadata, a huge n) or are unreadable,
    when the journal is replayed, then none is sent, each becomes a summary letter, and the
    journal forgets them; a valid entry is still sent."""
    now = time.time()
    journal.record(raw, MODEL, "deep", TASK_INGEST_PREDICTIONS,
                   predictions("deep", [0.5], metadata=[{"a": nested(20)}]), now=now - 9000)
    journal.record(raw, MODEL, "huge", TASK_INGEST_PREDICTIONS,
                   predictions("huge", 0.5, n=10 ** 9), now=now - 9000)
    journal.record(raw, MODEL, "ok", TASK_INGEST_LABELS,
                   {"v": 1, "kind": "labels", "batch_id": "ok", "model": MODEL, "n": 1,
                    "prediction_id": ["p"], "actual": [1]}, now=now - 9000)
    raw.set(keys.journal_entry(MODEL, "garbage"), b"\xff\xfe not json")
    raw.zadd(keys.journal(MODEL), {"garbage": now - 9000})
    sent: list[str] = []
    replayed = journal.replay(raw, [MODEL], 7200, lambda _task, body: sent.append(body["batch_id"]))
    assert sent == ["ok"] and replayed == {MODEL: 1}
    reasons = {x["batch_id"]: x["reason"] for x in letters(raw)}
    assert set(reasons) == {"deep", "huge", "garbage"}
    assert "metadata: expected at most 8 levels" in reasons["deep"]
    assert "n: expected at most 10000 events" in reasons["huge"]
    assert "unreadable" in reasons["garbage"]
    assert raw.zrange(keys.journal(MODEL), 0, -1) == [b"ok"]


# ----------------------------------------------------------------------------- duplicates

def test_duplicates_of_a_producer_cost_one_hash_not_one_key_per_message(
        ingestor: Ingestor, raw: redis.Redis, reader: WindowReader) -> None:
    """Given 2,000 numbered batches of one producer, some delivered twice and some out of
    order, when ingested, then each is counted once and the producer leaves one small hash and
    no per-message marker."""
    rng = np.random.default_rng(5)
    order = list(range(1, 2001))
    for i in range(0, 2000, 50):  # shuffle within windows of 50: workers overtake each other
        chunk = order[i:i + 50]
        rng.shuffle(chunk)
        order[i:i + 50] = chunk
    deliveries = order + [int(x) for x in rng.choice(order, 300)]  # 300 redeliveries
    for seq in deliveries:
        ingestor.ingest_predictions(predictions(f"00ff00ff00ff.{seq}", [0.5]))
    assert reader.totals(MODEL, "1.0.0")["n"] == 2000
    seen = raw.hgetall(keys.producer_seen(MODEL, "00ff00ff00ff"))
    assert seen[b"w"] == b"2000" and seen[b"holes"] == b"0" and len(seen) == 2
    assert list(raw.scan_iter(keys.batch_done(MODEL, "*"))) == []


def test_a_lost_batch_becomes_a_hole_and_is_applied_once_when_it_returns(
        ingestor: Ingestor, raw: redis.Redis, reader: WindowReader) -> None:
    """Given batch 5 of a producer lost on its way while 600 later batches arrive (past the
    256-batch window), when batch 5 comes back from the journal, then it is applied once,
    and a second copy is recognised."""
    producer = "abcdefabcdef"
    for seq in [*range(1, 5), *range(6, 606)]:
        ingestor.ingest_predictions(predictions(f"{producer}.{seq}", [0.5]))
    seen = raw.hgetall(keys.producer_seen(MODEL, producer))
    assert seen[b"holes"] == b"1" and b"h:5" in seen
    assert ingestor.ingest_predictions(predictions(f"{producer}.5", [0.5]))["applied"] is True
    assert ingestor.ingest_predictions(predictions(f"{producer}.5", [0.5]))["applied"] is False
    assert ingestor.ingest_predictions(predictions(f"{producer}.300", [0.5]))["applied"] is False
    assert reader.totals(MODEL, "1.0.0")["n"] == 605
    assert raw.hgetall(keys.producer_seen(MODEL, producer))[b"holes"] == b"0"


def test_a_gap_wider_than_the_budget_forgets_its_oldest_seqs(ingestor: Ingestor,
                                                              raw: redis.Redis) -> None:
    """Given a producer at seq 10, when a batch claims seq 10**9 (a billion batches missing in
    between), then it is applied in milliseconds, the producer keeps at most 8,192 holes (the
    newest seqs of the gap) and counts the rest as forgotten, and batches after it apply."""
    producer = "0123456789ab"
    for seq in range(1, 11):
        ingestor.ingest_predictions(predictions(f"{producer}.{seq}", [0.5]))
    far = 10 ** 9
    assert ingestor.ingest_predictions(predictions(f"{producer}.{far}", [0.5]))["applied"]
    seen = raw.hgetall(keys.producer_seen(MODEL, producer))
    assert int(seen[b"holes"]) == 8192 and int(seen[b"w"]) == far - 256
    assert int(raw.hget(keys.counters(MODEL), "gaps_forgotten")) == far - 256 - 10 - 8192
    assert ingestor.ingest_predictions(predictions(f"{producer}.{far + 1}", [0.5]))["applied"]
    # a batch within the remembered holes still applies once
    assert ingestor.ingest_predictions(predictions(f"{producer}.{far - 300}", [0.5]))["applied"]
    assert not ingestor.ingest_predictions(
        predictions(f"{producer}.{far - 300}", [0.5]))["applied"]


def test_an_unknown_producer_starts_below_its_first_batch(ingestor: Ingestor,
                                                           raw: redis.Redis,
                                                           reader: WindowReader) -> None:
    """Given no state for a producer (new, or silent past the state's TTL) whose first batch to
    arrive is seq 2,000, when it and then earlier batches arrive, then the 1,280 seqs below it
    (the window and 1,024 assumed holes) are still accepted once each."""
    producer = "fedcba987654"
    assert ingestor.ingest_predictions(predictions(f"{producer}.2000", [0.5]))["applied"]
    seen = raw.hgetall(keys.producer_seen(MODEL, producer))
    assert int(seen[b"w"]) == 2000 - 256 and int(seen[b"holes"]) == 1024
    for seq in (1999, 1744, 721):
        assert ingestor.ingest_predictions(predictions(f"{producer}.{seq}", [0.5]))["applied"]
        assert not ingestor.ingest_predictions(
            predictions(f"{producer}.{seq}", [0.5]))["applied"]
    # older than the window and the holes assumed below it: taken as applied long ago
    assert not ingestor.ingest_predictions(predictions(f"{producer}.720", [0.5]))["applied"]
    assert reader.totals(MODEL, "1.0.0")["n"] == 4


def test_the_client_numbers_its_batches_per_model(worker: Any, registry: Registry,
                                                  raw: redis.Redis) -> None:
    """Given a client sending batches to two models, when they are applied, then each model
    holds one watermark hash for this producer, at the number of batches sent to it."""
    register_catalogue(registry)
    with MonitoringClient(flush_interval_ms=10_000, batch_size=100_000) as client:
        for _ in range(3):
            client.record_prediction(MODEL, 0.5)
            client.record_prediction("waf-behavioral", 0.5)
            assert client.flush(20)
        producer = client._producer
    for model in (MODEL, "waf-behavioral"):
        wait_for(lambda m=model: raw.hget(keys.producer_seen(m, producer), "w") == b"3",
                 what=f"three batches of {model}")


# ----------------------------------------------------------------------------- binary columns

def _b64(values: Any, dtype: str) -> str:
    import base64

    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode()


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("score", {"f8": _b64([0.5] * 3, "<f8")},
     ("score: expected {'f8': base64 of 4 little-endian float64 values}, got 32 characters "
     "of base64")),
    ("score", {"f8": "!" * 44},
     ("score: expected {'f8': base64 of 4 little-endian float64 values}, got characters that "
     "are not base64")),
    ("score", {"f4": _b64([0.5] * 8, "<f4")},
     "score: expected {'f8': base64 of 4 little-endian float64 values}, got dict of 1"),
    ("score", {"f8": _b64([0.5] * 4, "<f8"), "i1": ""},
     "score: expected {'f8': base64 of 4 little-endian float64 values}, got dict of 2"),
    ("actual", {"i1": _b64([1] * 4, "<i8")},
     "actual: expected {'i1': base64 of 4 int8 values}, got 44 characters of base64"),
    ("id_seq", {"i8": _b64([1, 2, -3, 4], "<i8")}, "id_seq: expected 4 counters >= 0"),
    ("timestamp", {"f8": 12}, ("timestamp: expected {'f8': base64 of 4 little-endian float64 "
                              "values}, got dict of 1")),
])
def test_a_malformed_binary_column_dead_letters_its_batch_with_the_reason(
        ingestor: Ingestor, raw: redis.Redis, column: str, value: Any, reason: str) -> None:
    """Given a batch whose binary column has the wrong length, code or alphabet (checked before
    anything is decoded), when ingested, then each of its events is a dead letter with a reason
    naming the column, nothing is counted, and the worker carries on with the next batch."""
    cols: dict[str, Any] = {"score": {"f8": _b64([0.5] * 4, "<f8")}, "id_prefix": "p-",
                            "id_start": 0, "timestamp": time.time()}
    cols[column] = value
    msg = predictions("bad-binary", cols.pop("score"), n=4, **cols)

    result = ingestor.ingest_predictions(msg)

    assert result["accepted"] == 0 and result["dead_letters"] == 4
    found = letters(raw)
    assert [x["reason"] for x in found] == [reason] * 4
    good = predictions("good", {"f8": _b64([0.2, 0.9], "<f8")}, n=2,
                       actual={"i1": _b64([0, 1], "i1")}, timestamp=time.time())
    assert ingestor.ingest_predictions(good)["accepted"] == 2


def test_bad_values_in_binary_columns_reject_only_their_events(
        ingestor: Ingestor, raw: redis.Redis, reader: WindowReader) -> None:
    """Given well-formed binary columns holding a NaN and an out-of-range score, a flag of 2 and
    an infinite latency, when ingested, then exactly those events are dead letters, with the
    same reasons as their JSON forms, each letter showing its event's values, and the rest is
    counted."""
    now = time.time()
    score = [0.1, float("nan"), 1.5, 0.4, 0.5, 0.6]
    actual = [1, 0, 1, 2, 0, -1]
    latency = [1.0, 1.0, 1.0, 1.0, float("inf"), float("nan")]
    msg = predictions("bad-values", {"f8": _b64(score, "<f8")}, n=6,
                      actual={"i1": _b64(actual, "i1")},
                      latency_ms={"f8": _b64(latency, "<f8")},
                      id_prefix="p-", id_seq={"i8": _b64([9, 8, 7, 6, 5, 4], "<i8")},
                      timestamp={"f8": _b64([now] * 6, "<f8")})

    result = ingestor.ingest_predictions(msg)

    assert result["accepted"] == 2 and result["dead_letters"] == 4
    by_index = {x["index"]: x for x in letters(raw)}
    assert by_index[1]["reason"] == "score: expected a number in [0, 1], got nan"
    assert by_index[2]["reason"] == "score: expected a number in [0, 1], got 1.5"
    assert by_index[3]["reason"] == "actual: expected true/false or 1/0, got 2"
    assert by_index[4]["reason"] == "latency_ms: expected a number >= 0, got inf"
    assert by_index[3]["event"] == {"prediction_id": "p-6", "score": 0.4, "actual": 2,
                                    "latency_ms": 1.0, "timestamp": now}
    assert reader.totals(MODEL, "1.0.0")["n"] == 2
