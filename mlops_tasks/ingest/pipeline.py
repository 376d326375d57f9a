"""The ingest path of a worker: validate a batch, resolve versions and decisions, aggregate with
numpy, and apply everything in one exactly-once Redis call. Bad events become dead letters with
their reason; the good events of the same batch are still counted."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeGuard, TypeVar

import numpy as np
import redis

from .. import keys
from ..binning import fine_decode, score_bins, threshold_bin
from ..errors import NotFoundError, ValidationError
from ..registry import Registry
from ..settings import Settings
from ..timebuckets import DAY_S, granularities
from . import events, journal, store
from .increments import (
    Increments,
    add_outcomes,
    add_predictions,
    by_version,
    pack_pending,
    unpack_pending,
)
from .store import AggregateStore, id_digest, marker_ttl_s

log = logging.getLogger("mlops.ingest")

# A label that finds no prediction is tried again after each of these delays before it counts as
# an orphan: its prediction may still be in flight (different batches go to different workers).
LABEL_RETRY_DELAYS_S = (1.0, 5.0, 30.0)

K = TypeVar("K")
T = TypeVar("T")

def _name_digest(model: Any) -> str:
    return hashlib.sha1(repr(model)[:1000].encode(), usedforsecurity=False).hexdigest()[:12]


def _valid_name(name: object) -> TypeGuard[str]:
    try:
        events.validate_model_name(name, "model")
    except ValidationError:
        return False
    return True


@dataclass
class _Entry(Generic[T]):
    value: T
    expires: float


@dataclass
class ModelCache:
    """Registry facts a worker needs per event, refreshed every ``ttl_s`` seconds."""

    registry: Registry
    ttl_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _versions: dict[str, _Entry[frozenset[str] | None]] = field(default_factory=dict)
    _defaults: dict[str, _Entry[str]] = field(default_factory=dict)
    _thresholds: dict[tuple[str, str], _Entry[float]] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget every fact: the next read of each goes to the registry."""
        self._versions.clear()
        self._defaults.clear()
        self._thresholds.clear()

    def _get(self, entries: dict[K, _Entry[T]], key: K, load: Callable[[], T],
             refresh: bool = False) -> T:
        now = self.clock()
        hit = entries.get(key)
        if hit is not None and hit.expires > now and not refresh:
            return hit.value
        value = load()
        entries[key] = _Entry(value, now + self.ttl_s)
        return value

    def versions(self, model: str, refresh: bool = False) -> frozenset[str] | None:
        """Registered versions, or None when the model is not registered. Callers refresh
        before rejecting anything, so a model or version registered a moment ago is never
        refused because of the cache."""
        def load() -> frozenset[str] | None:
            try:
                return frozenset(self.registry.versions(model))
            except (NotFoundError, ValidationError):
                return None
        return self._get(self._versions, model, load, refresh)

    def default_version(self, model: str) -> str:
        return self._get(self._defaults, model, lambda: self.registry.default_version(model))

    def threshold(self, model: str, version: str) -> float:
        return self._get(self._thresholds, (model, version), lambda: float(
            self.registry.current(model, version)["config"]["decision_threshold"]))


_REASON_CHARS = 300


def _letter(msg: Any, batch_id: str | None, model: Any, index: int, reason: str,
            now: float) -> dict[str, Any]:
    return {"at": now, "model": _given_name(model), "batch_id": batch_id, "index": index,
            "reason": events.printable(reason, _REASON_CHARS),
            "event": events.original_event(msg, index)}


def _summary_letter(msg: Any, batch_id: str, model: Any, n: Any, reason: str,
                    now: float) -> dict[str, Any]:
    """One letter standing for a whole message that was not looked into (it broke a limit)."""
    return {"at": now, "model": _given_name(model), "batch_id": batch_id, "index": None,
            "reason": events.printable(reason, _REASON_CHARS), "summary": True,
            "events": n if type(n) is int and n >= 0 else None,
            "kind": msg.get("kind") if isinstance(msg, dict) and
            msg.get("kind") in ("predictions", "labels") else None}


def _given_name(model: Any) -> str | None:
    """A model name as given, fit to be stored and shown: at most 64 characters, every
    non-printable character escaped."""
    if model is None:
        return None
    return events.printable(model if isinstance(model, str) else events.short_repr(model), 64)


def _batch_ref(msg: Any) -> str:
    """The message's batch id when it has a usable one, else one derived from its content."""
    batch_id = msg.get("batch_id") if isinstance(msg, dict) else None
    if isinstance(batch_id, str) and 0 < len(batch_id) <= 128 and batch_id.isprintable():
        return batch_id
    try:
        head = json.dumps(msg, default=str, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        head = type(msg).__name__
    return "invalid-" + hashlib.sha1(head.encode(), usedforsecurity=False).hexdigest()[:16]


class Ingestor:
    def __init__(self, settings: Settings, registry: Registry, raw: redis.Redis,
                 clock: Callable[[], float] = time.time, cache_ttl_s: float = 5.0,
                 replicas: int = 0) -> None:
        self.settings = settings
        self.store = AggregateStore(raw, marker_ttl_s(settings.visibility_timeout_s),
                                    replicas=replicas)
        self.models = ModelCache(registry, ttl_s=cache_ttl_s)
        self.clock = clock
        self.grans = granularities(settings.retention_days)
        self.max_age_s = settings.retention_days * DAY_S

    # ------------------------------------------------------------------ helpers
    def reject_batch(self, msg: Any, reason: str, kind: str, *,
                     summary: bool = False) -> dict[str, Any]:
        """Dead-letter a whole batch: every event with ``reason`` or, with ``summary`` (the
        message broke a limit and was not looked into), one letter standing for all of them.
        A registered model keeps them; others go to the ``_unrouted`` store, counted by the
        name given. A batch that keeps being rejected is dead-lettered once."""
        now = self.clock()
        batch_id = _batch_ref(msg)
        model = msg.get("model") if isinstance(msg, dict) else None
        given_n = msg.get("n") if isinstance(msg, dict) else None
        n = given_n if type(given_n) is int and 0 < given_n <= events.MAX_EVENTS else 1
        name = model if _valid_name(model) and self._check_model(model) is None else None
        owner = keys.UNROUTED if name is None else name
        if summary:
            letters = [_summary_letter(msg, batch_id, model, given_n, reason, now)]
        else:
            letters = [_letter(msg, batch_id, model, i, reason, now) for i in range(n)]
        cmds = self.store.dead_letter_commands(owner, letters)
        if name is None:
            cmds += self.store.unrouted_name_commands(_given_name(model) or "-", len(letters))
        if name is not None:  # remembered like any batch: a copy of an applied one changes nothing
            done = self._apply(name, batch_id, cmds)
        else:  # under _unrouted, batches of different models share nothing but their id
            done = self.store.apply(owner, f"{_name_digest(model)}:{batch_id}", cmds,
                                    marker_only=True)
            if _valid_name(model):
                journal.forget(self.store.redis, model, batch_id)  # another slot: a 2nd step
        log.warning("batch rejected", extra={
            "model": _given_name(model), "batch_id": batch_id, "kind": kind,
            "events": given_n if type(given_n) is int else None, "letters": len(letters),
            "reason": events.printable(reason, _REASON_CHARS)})
        return {"model": _given_name(model), "batch_id": batch_id,
                "applied": done.applied, "accepted": 0,
                "dead_letters": len(letters) if done.applied else 0}

    def _apply(self, model: str, batch_id: str, cmds: list[store.Command],
               pending: Sequence[tuple[bytes, bytes]] = ()) -> store.Applied:
        done = self.store.apply(model, batch_id, cmds, pending)
        if done.status == store.PARTIAL:
            log.error("batch partly applied: a write failed after others were done; marked "
                      "applied so that no retry counts it twice", extra={
                          "model": model, "batch_id": batch_id, "error": done.error})
        return done

    def _decode(self, msg: Any, kind: str, decoder: Callable[..., Any],
                now: float) -> tuple[Any, dict[str, Any] | None]:
        """((batch_id, model, events, rejects), None), or (None, summary) when the whole batch
        was dead-lettered: malformed, or for a model that is not registered."""
        try:
            batch_id, model, _ = events.batch_header(msg, kind)
            problem = self._check_model(model)
            if problem:
                return None, self.reject_batch(msg, problem, kind)
            decoded, rejects = decoder(msg, now=now, max_age_s=self.max_age_s)
        except events.LimitError as exc:
            return None, self.reject_batch(msg, str(exc), kind, summary=True)
        except ValidationError as exc:
            return None, self.reject_batch(msg, str(exc), kind)
        return (batch_id, model, decoded, rejects), None

    def _check_model(self, model: str) -> str | None:
        if self.models.versions(model) is None and \
                self.models.versions(model, refresh=True) is None:
            return f"model: {model!r} is not registered"
        return None

    # ------------------------------------------------------------------ predictions
    def ingest_predictions(self, msg: Any) -> dict[str, Any]:
        now = self.clock()
        decoded, rejected = self._decode(msg, "predictions", events.decode_predictions, now)
        if rejected is not None:
            return rejected
        batch_id, model, preds, rejects = decoded

        versions, keep = self._resolve_versions(model, preds.version, preds.index, rejects)
        if not keep.all():
            preds = _subset(preds, keep)
            versions = [v for v, k in zip(versions, keep, strict=True) if k]
        bins = score_bins(preds.score)
        predicted = self._decide(model, versions, bins, preds.predicted)

        inc = Increments()
        add_predictions(inc, self.grans, versions, preds.timestamp, preds.score,
                        preds.latency_ms)
        labeled = preds.actual >= 0
        if labeled.any():
            li = np.flatnonzero(labeled)
            add_outcomes(inc, self.grans, versions if li.size == len(versions) else
                         [versions[i] for i in li], preds.timestamp[li],
                         preds.score[li], preds.actual[li], predicted[li], preds.latency_ms[li],
                         bins=bins[li])
        pending = self._pending(model, preds, versions, bins, predicted, ~labeled)

        letters = [_letter(msg, batch_id, model, r.index, r.reason, now) for r in rejects]
        cmds = self.store.commands(model, inc, self.grans)
        cmds += self.store.dead_letter_commands(model, letters)
        done = self._apply(model, batch_id, cmds, pending)
        applied, duplicates = done.applied, done.duplicates
        if letters:
            log.warning("events dead-lettered", extra={
                "model": model, "batch_id": batch_id, "count": len(letters),
                "reason": letters[0]["reason"]})
        return {"model": model, "batch_id": batch_id, "applied": applied,
                "accepted": len(preds), "labeled": int(labeled.sum()),
                "pending": len(pending) - duplicates if applied else 0,
                "duplicates": duplicates, "dead_letters": len(letters)}

    def _resolve_versions(self, model: str, given: list[str | None], index: np.ndarray,
                          rejects: list[events.Reject]) -> tuple[list[str], np.ndarray]:
        known = self.models.versions(model) or frozenset()
        keep = np.ones(len(given), dtype=bool)
        if given and given.count(given[0]) == len(given):  # one version (or none) for all
            v = given[0]
            if v is None:
                return [self.models.default_version(model)] * len(given), keep
            if v in known or v in (self.models.versions(model, refresh=True) or ()):
                return list(given), keep  # type: ignore[arg-type]  # no None: checked above
        refreshed = False
        default = None
        out: list[str] = []
        for i, v in enumerate(given):
            if v is None:
                default = default or self.models.default_version(model)
                out.append(default)
                continue
            if v not in known and not refreshed:  # registered a moment ago? ask once a batch
                refreshed = True
                known = self.models.versions(model, refresh=True) or frozenset()
            if v in known:
                out.append(v)
            else:
                keep[i] = False
                out.append("")
                rejects.append(events.Reject(int(index[i]),
                                             f"version: {v} is not registered for {model}"))
        return out, keep

    def _decide(self, model: str, versions: list[str], bins: np.ndarray,
                predicted: np.ndarray) -> np.ndarray:
        """Fill unknown decisions with score >= the version's decision threshold."""
        out = predicted.copy()
        unknown = out < 0
        if unknown.any():
            for version, idx in by_version(versions):
                idx = idx[unknown[idx]]
                if idx.size:
                    cut = threshold_bin(self.models.threshold(model, version))
                    out[idx] = (bins[idx] >= cut).astype(np.int8)
        return out

    def _pending(self, model: str, preds: events.Predictions, versions: list[str],
                 bins: np.ndarray, predicted: np.ndarray,
                 unlabeled: np.ndarray) -> list[tuple[bytes, bytes]]:
        candidates = np.flatnonzero(unlabeled)
        idx: list[int] = []
        ids: list[str] = []
        for i, pid in zip(candidates.tolist(), preds.ids.take(candidates), strict=True):
            if pid is not None:
                idx.append(i)
                ids.append(pid)
        if not idx:
            return []
        vidx_of = {v: self.store.version_index(model, v) for v in {versions[i] for i in idx}}
        sel = np.asarray(idx)
        records = pack_pending(bins[sel], preds.score[sel], preds.timestamp[sel],
                               preds.latency_ms[sel],
                               np.array([vidx_of[versions[i]] for i in idx]), predicted[sel])
        return [(id_digest(pid), rec) for pid, rec in zip(ids, records, strict=True)]

    # ------------------------------------------------------------------ labels
    def ingest_labels(self, msg: Any,
                      requeue: Callable[[dict[str, Any], float], None] | None = None
                      ) -> dict[str, Any]:
        """Join labels to their pending predictions.

        A label whose prediction is not there yet (its batch may still be on its way through
        another worker) is retried with ``requeue(batch, countdown_s)`` after each delay of
        ``LABEL_RETRY_DELAYS_S``; only then is it counted as an orphan. The retry batch has a
        deterministic id, so a redelivered batch never joins a label twice."""
        now = self.clock()
        decoded, rejected = self._decode(msg, "labels", events.decode_labels, now)
        if rejected is not None:
            return rejected
        batch_id, model, labels, rejects = decoded

        digests = [id_digest(pid) for pid in labels.prediction_id]
        claimed = self.store.claim(model, batch_id, digests)
        if claimed is None:  # already applied by an earlier delivery
            return {"model": model, "batch_id": batch_id, "applied": False, "joined": 0,
                    "orphans": 0, "dead_letters": 0}
        inc = Increments()
        joined = len(claimed)
        if claimed:
            order = np.array([i for i, _ in claimed])
            rec = unpack_pending([r for _, r in claimed])
            names = self.store.version_names(model)
            versions = [names.get(int(v), "") for v in rec["vidx"]]
            label_ts = labels.timestamp[order]
            add_outcomes(inc, self.grans, versions, label_ts, rec["score"],
                         labels.actual[order], rec["predicted"], fine_decode(rec["lat"]),
                         delay_s=np.maximum(label_ts - rec["time"], 0.0), bins=rec["bin"])
        unmatched = sorted(set(range(len(labels))) - {i for i, _ in claimed})
        attempt = msg.get("attempt", 0)
        if type(attempt) is not int or not 0 <= attempt <= len(LABEL_RETRY_DELAYS_S):
            attempt = 0
        retried = 0
        if unmatched and requeue is not None and attempt < len(LABEL_RETRY_DELAYS_S):
            requeue({"v": events.WIRE_VERSION, "kind": "labels", "model": model,
                     "batch_id": f"{batch_id[:100]}:r{attempt + 1}", "attempt": attempt + 1,
                     "n": len(unmatched),
                     "prediction_id": [labels.prediction_id[i] for i in unmatched],
                     "actual": [int(labels.actual[i]) for i in unmatched],
                     "timestamp": [float(labels.timestamp[i]) for i in unmatched]},
                    LABEL_RETRY_DELAYS_S[attempt])
            retried = len(unmatched)
        orphans = len(unmatched) - retried
        letters = [_letter(msg, batch_id, model, r.index, r.reason, now) for r in rejects]
        cmds = self.store.commands(model, inc, self.grans)
        cmds += self.store.dead_letter_commands(model, letters)
        if orphans:
            cmds.append(["HINCRBY", keys.counters(model), keys.F_ORPHAN_LABELS, orphans])
        if joined:
            cmds.append(["HINCRBY", keys.counters(model), keys.F_LABELS_JOINED, joined])
        cmds.append(["DEL", keys.batch_claim(model, batch_id)])
        applied = self._apply(model, batch_id, cmds).applied
        return {"model": model, "batch_id": batch_id, "applied": applied, "joined": joined,
                "retried": retried, "orphans": orphans, "dead_letters": len(letters)}


def _subset(preds: events.Predictions, keep: np.ndarray) -> events.Predictions:
    idx = np.flatnonzero(keep)
    return events.Predictions(
        score=preds.score[keep], predicted=preds.predicted[keep], actual=preds.actual[keep],
        timestamp=preds.timestamp[keep], latency_ms=preds.latency_ms[keep],
        version=[preds.version[i] for i in idx], ids=preds.ids.subset(keep),
        index=preds.index[keep])

