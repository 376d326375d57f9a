"""The collector's event counts: alerts fired, tuning runs and scheduled job runs.

Where they come from, and how exact they are:

* alerts fired: the ``alerts:fired`` counter hash that ``AlertStore.fire`` increments in the
  transaction that records a new alert (exact; alerts fired before the hash existed are not in
  it);
* tuning runs: counted from the kept tuning history (capped at ``tuning.engine.HISTORY_CAP``
  runs per model and trimmed to the retention period by cleanup, so a count can drop, which
  Prometheus reads as a counter reset). The count is redone in Redis (``COUNT_APPLIED``) only
  when the history's length or newest run changed since the last scrape; otherwise it is the
  count cached by this process, so a scrape reads one run per model;
* job runs: ``runs`` of the job's facts (exact) split by outcome with the ``failures`` field
  when a writer keeps one, else with the 0/1 outcomes of the last ``jobs.OUTCOMES_KEPT`` runs
  (exact until the job has run more often than that; past it the failures are a lower bound).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .. import keys, lua_scripts
from ..connection import run_scripts
from ..jobs import JOBS, OUTCOMES_KEPT

F_FAILURES = "failures"  # of jobs.facts: failed runs in all, when the writer keeps it


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class TuningFacts:
    applied: int
    not_applied: int
    last_improvement_percent: float | None


class TuningCounts:
    """Per model, the kept runs counted by ``applied`` and the newest run's improvement; the
    count is cached against (history length, newest run) and redone only when they change."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[int, bytes], tuple[int, int]]] = {}
        self._lock = threading.Lock()

    def read(self, raw: redis.Redis, names: Sequence[str]) -> dict[str, TuningFacts]:
        pipe = raw.pipeline(transaction=False)
        for n in names:
            pipe.llen(keys.tuning_history(n))
            pipe.lindex(keys.tuning_history(n), 0)
        heads = pipe.execute()
        count = raw.register_script(lua_scripts.source("count_applied.lua"))
        out: dict[str, TuningFacts] = {}
        with self._lock:
            stale = []
            for i, n in enumerate(names):
                length, head = int(heads[2 * i]), heads[2 * i + 1]
                if not length:
                    self._cache.pop(n, None)
                    continue
                state = (length, bytes(head or b""))
                cached = self._cache.get(n)
                if cached is None or cached[0] != state:
                    stale.append((n, state))
            if stale:
                counted = run_scripts(raw, count,
                                      [([keys.tuning_history(n)], []) for n, _ in stale])
                for (n, state), (applied, other) in zip(stale, counted, strict=True):
                    self._cache[n] = (state, (int(applied), int(other)))
            for i, n in enumerate(names):
                if n not in self._cache or not heads[2 * i]:
                    continue
                _, (applied, other) = self._cache[n]
                improvement = json.loads(heads[2 * i + 1]).get("improvement_percent")
                out[n] = TuningFacts(applied, other,
                                     None if improvement is None else float(improvement))
        return out


def read_alerts_fired(raw: redis.Redis, names: Sequence[str]) -> dict[str, dict[str, int]]:
    pipe = raw.pipeline(transaction=False)
    for n in names:
        pipe.hgetall(keys.alerts_fired(n))
    return {n: {_text(k): int(v) for k, v in found.items()}
            for n, found in zip(names, pipe.execute(), strict=True)}


def alert_metrics(fired: dict[str, dict[str, int]]) -> Iterator[Metric]:
    total = CounterMetricFamily("mlops_alerts", "alerts fired (new alerts, silenced or not, "
                                "by the severity they fired with)",
                                labels=["model", "kind", "severity"])
    for model, counts in sorted(fired.items()):
        for field, n in sorted(counts.items()):
            kind, _, severity = field.rpartition(":")
            total.add_metric([model, kind, severity], n)
    yield total


def tuning_metrics(facts: dict[str, TuningFacts]) -> Iterator[Metric]:
    runs = CounterMetricFamily("mlops_tuning_runs", "tuning runs kept in the model's tuning "
                               "history (capped and trimmed to the retention period: a drop "
                               "is a reset)", labels=["model", "applied"])
    improvement = GaugeMetricFamily("mlops_tuning_improvement_percent", "improvement of the "
                                    "tuning metric the model's last run found (absent when "
                                    "undefined)", labels=["model"])
    for model, f in sorted(facts.items()):
        runs.add_metric([model, "true"], f.applied)
        runs.add_metric([model, "false"], f.not_applied)
        if f.last_improvement_percent is not None:
            improvement.add_metric([model], f.last_improvement_percent)
    yield from (runs, improvement)


def job_run_metrics(client: redis.Redis) -> Iterator[Metric]:
    pipe = client.pipeline(transaction=False)
    for job in JOBS:
        pipe.hmget(keys.job_facts(job.name), ["runs", F_FAILURES])
        pipe.lrange(keys.job_outcomes(job.name), 0, OUTCOMES_KEPT - 1)
    found = pipe.execute()
    runs = CounterMetricFamily("mlops_scheduler_job_runs", "runs of the scheduled job by "
                               f"outcome (failures counted from the last {OUTCOMES_KEPT} "
                               "outcomes kept: a lower bound once a job ran more often)",
                               labels=["job", "outcome"])
    for i, job in enumerate(JOBS):
        (total, failures), outcomes = found[2 * i], found[2 * i + 1]
        total_n = int(total or 0)
        failed = int(failures) if failures is not None else \
            sum(1 for x in outcomes if _text(x) == "0")
        failed = min(failed, total_n)
        runs.add_metric([job.name, "success"], total_n - failed)
        runs.add_metric([job.name, "failure"], failed)
    yield runs
