"""n1-detector: N+1 query patterns in one request's SQL query log.

An N+1 is a loop that runs the same query once per parent row with a different key each time,
where one ``IN (...)`` query or a join would do. The detector reads the request's statements as
templates (``sqllog.py``: literals and placeholders become slots, ``IN`` lists collapse, case,
quoting, comments and whitespace normalized), groups them by template and scores each template
that ran more than once, with ``c(k) = 1 - exp(-(k - 1) / 2)`` (c(2) = 0.39, c(3) = 0.63,
c(5) = 0.86, c(10) = 0.99):

* its ``d`` distinct parameter sets count ``c(d)`` times what varies between them: a key bound by
  equality (``WHERE orders.user_id = 3``, ``3 = post_tags.post_id``; one ``IN`` query could
  replace the loop) fully; a non-key column by equality (``status = 'paid'``) or another value
  half; whole ``IN`` lists (a batch sent in chunks) 0.35; ranges, ``LIMIT``/``OFFSET``
  (pagination) 0.2;
* its runs that repeat earlier parameters add ``c(n - d + 1)`` times 0.25: the same query with
  the same parameters is a missing cache -- caching fixes it, an ``IN`` cannot, so it is not
  scored as an N+1;
* INSERT/UPDATE/DELETE loops score ``c(n)`` times 0.3 (write batching, a different problem);
* a template whose first run no SELECT preceded (no parent query) loses 15 %.

The request's score is the best template's, each other repeated template adding a quarter of
its own on what is left (noisy-or), so one loop of 2 scores 0.39 and one of 3 scores 0.63
against the 0.60 of ``NPLUSONE_ML_CONFIDENCE_THRESHOLD``.

Known blind spots (measured in ``bench/detectors/nplusone.py``): a handful of named lookups
(``key = 'currency'``, then ``'locale'``...) looks like a loop over keys; lazy loads spread over
many templates (a polymorphic association, one table per target kind) score per template.

``NPLUSONE_ML_TIMEOUT_MS`` (online: the registry's ``params.timeout_ms``) bounds the work per
request: past it the rest of the log is not read, the score is that of what was seen, and the
analysis says so (``truncated``, reported in the metadata). The metadata reported with a
prediction holds template fingerprints and counts, never SQL or its literals (they can hold
personal data).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .base import Detection, ReferenceDetector
from .sqllog import READS, UNKNOWN, Statement, entries, parse

if TYPE_CHECKING:
    from ..client import MonitoringClient
    from ..settings import Settings

MAX_SLOT_VALUES = 64  # distinct values kept per slot: enough to tell varying from constant
TAU = 2.0  # repeats scale of the count term
OTHERS_WEIGHT = 0.25  # each other repeated template adds this share of its score

# the factor of each pattern: what varies between a template's runs
FACTORS = {
    "in-replaceable": 1.0,  # a key by equality: one IN query would do
    "lookup-by-value": 0.5,  # a non-key column by equality (status = ?)
    "varying": 0.5,  # values elsewhere (LIKE, SELECT list...)
    "chunked-in": 0.35,  # whole IN lists: already batched, in chunks
    "identical": 0.25,  # the same parameters every time: a cache miss, not an N+1
    "pagination": 0.2,  # ranges, LIMIT/OFFSET
}
WRITE_FACTOR = 0.3
NO_PARENT_FACTOR = 0.85
UNKNOWN_PARAMS_FACTOR = 0.85  # placeholders without their parameters: assume they vary


# ----------------------------------------------------------------------------- scoring

@dataclass
class TemplateStats:
    """What one request did with one template."""

    statement: Statement  # the first run
    parent: bool  # a SELECT of another template ran before it
    count: int = 0
    signatures: set[int] = field(default_factory=set)
    slot_values: list[set[Any]] = field(default_factory=list)
    unknown: bool = False  # some parameters missing from the log

    def add(self, statement: Statement) -> None:
        self.count += 1
        self.signatures.add(hash(statement.values))
        if not self.slot_values:
            self.slot_values = [set() for _ in statement.values]
        for seen, value in zip(self.slot_values, statement.values, strict=False):
            if value is UNKNOWN or (isinstance(value, tuple) and UNKNOWN in value):
                self.unknown = True
            elif len(seen) < MAX_SLOT_VALUES:
                seen.add(value)

    @property
    def distinct(self) -> int:
        return len(self.signatures)


def count_term(n: int) -> float:
    """How much ``n`` runs of one template weigh: 0 for one run, 0.39 for 2, 0.63 for 3..."""
    return 0.0 if n < 2 else 1.0 - math.exp(-(n - 1) / TAU)


# what varies between a template's runs -> its pattern, the first that matches
_PATTERNS: tuple[tuple[str, Callable[[set[str]], bool]], ...] = (
    ("in-replaceable", lambda varying: "eq-key" in varying),
    ("lookup-by-value", lambda varying: "eq" in varying),
    ("pagination", lambda varying: varying <= {"range", "limit", "offset"}),
    ("chunked-in", lambda varying: "in" in varying),
)


def pattern_of(stats: TemplateStats) -> str:
    """What varies between the runs of a template (a key of FACTORS), or ``write-loop``."""
    st = stats.statement
    if st.verb not in READS:
        return "write-loop"
    varying = [slot for slot, seen in zip(st.slots, stats.slot_values, strict=False)
               if len(seen) > 1]
    if stats.unknown and not varying:  # the log hides them: assume the keys vary
        varying = [slot for slot in st.slots if slot.context in ("eq", "in")]
    if not varying:
        return "identical"  # scored by its repeats alone
    contexts = {"eq-key" if s.context == "eq" and s.key_like else s.context for s in varying}
    return next((name for name, matches in _PATTERNS if matches(contexts)), "varying")


def template_score(stats: TemplateStats) -> tuple[float, str]:
    """One template's N+1 score in [0, 1] and its pattern: the count term of its distinct
    parameter sets times its pattern's factor, joined (noisy-or) with the count term of its
    repeats of earlier parameters times a cache miss's factor."""
    pattern = pattern_of(stats)
    if pattern == "write-loop":
        score = count_term(stats.count) * WRITE_FACTOR
    else:
        distinct = stats.count if stats.unknown else stats.distinct
        main = count_term(distinct) * FACTORS.get(pattern, 0.0)
        if stats.unknown:
            main *= UNKNOWN_PARAMS_FACTOR
        again = count_term(stats.count - distinct + 1) * FACTORS["identical"]
        score = 1.0 - (1.0 - main) * (1.0 - again)
    if not stats.parent:
        score *= NO_PARENT_FACTOR
    return score, pattern


@dataclass(frozen=True)
class Analysis:
    """A request's N+1 score and what it rests on (no SQL text, no literal)."""

    score: float
    pattern: str  # of the top template; "none" when nothing repeats
    fingerprint: str | None  # the top template's hash (blake2b, 8 bytes hex)
    repeats: int  # runs of the top template
    distinct: int  # distinct parameter sets among them
    templates: int  # distinct templates in the request
    queries: int  # statements read
    truncated: bool  # the time budget ran out before the end of the log

    def to_metadata(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "fingerprint": self.fingerprint,
                "repeats": self.repeats, "distinct": self.distinct,
                "templates": self.templates, "queries": self.queries,
                "truncated": self.truncated}


def analyze(queries: Iterable[Any], *, timeout_ms: float | None = None,
            clock: Callable[[], float] = time.perf_counter) -> Analysis:
    """Score one request's query log (see the module's doc for the accepted shapes); stop
    reading it after ``timeout_ms`` milliseconds."""
    deadline = None if timeout_ms is None else clock() + timeout_ms / 1000.0
    groups: dict[str, TemplateStats] = {}
    selects = 0
    read = 0
    truncated = False
    for sql, params in entries(queries):
        if deadline is not None and clock() > deadline:
            truncated = True
            break
        statement = parse(sql, params)
        read += 1
        stats = groups.get(statement.template)
        if stats is None:
            stats = groups[statement.template] = TemplateStats(statement, parent=selects > 0)
        stats.add(statement)
        selects += statement.verb in READS
    scored = sorted(((template_score(s), s) for s in groups.values() if s.count > 1),
                    key=lambda x: x[0][0], reverse=True)
    if not scored:
        return Analysis(0.0, "none", None, 0, 0, len(groups), read, truncated)
    (best, pattern), top = scored[0]
    rest = 1.0 - best
    for (other, _), _stats in scored[1:]:
        rest *= 1.0 - OTHERS_WEIGHT * other
    score = 1.0 - rest
    return Analysis(min(max(score, 0.0), 1.0), pattern, top.statement.fingerprint, top.count,
                    top.distinct, len(groups), read, truncated)


# ----------------------------------------------------------------------------- the detector

class NPlusOneDetector(ReferenceDetector):
    """Scores one request's SQL query log for N+1 patterns; see the module's doc.

    ``clock`` (seconds, monotonic) measures the time budget; tests pass a fake one."""

    model: ClassVar[str] = "n1-detector"

    def __init__(self, decision_threshold: float | None = None, *,
                 client: MonitoringClient | None = None, settings: Settings | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(decision_threshold, client=client, settings=settings)
        self.clock = clock

    @property
    def timeout_ms(self) -> float:
        """The time budget per request: the registry's ``params.timeout_ms`` online, else
        ``NPLUSONE_ML_TIMEOUT_MS``."""
        config = self._config()
        params = config.get("params") if config is not None else None
        value = params.get("timeout_ms") if isinstance(params, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
        return float(self.settings.nplusone_ml_timeout_ms)

    def analyze(self, queries: Iterable[Any]) -> Analysis:
        """The score of ``queries`` with what it rests on, within the time budget."""
        return analyze(queries, timeout_ms=self.timeout_ms, clock=self.clock)

    def score_request(self, queries: Iterable[Any]) -> float:
        """The N+1 score of one request's query log, in [0, 1]."""
        return self.analyze(queries).score

    def detect_request(self, queries: Iterable[Any], *, actual: bool | None = None) -> Detection:
        """Score and decide one request, reported through the client when there is one, with
        the top template's fingerprint and counts as metadata (never SQL or its literals).
        Disabled (``NPLUSONE_ML_ENABLED`` / the registry's ``enabled``): no score, no report."""
        if not self.enabled:
            return self.disabled()
        started = time.perf_counter()
        found = self.analyze(queries)
        latency_ms = (time.perf_counter() - started) * 1000.0
        return self.decide(found.score, actual=actual, metadata=found.to_metadata(),
                           latency_ms=latency_ms)
