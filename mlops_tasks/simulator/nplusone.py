"""n1-detector's traffic: request query logs captured from a real ORM, with ground truth.

Each request runs real SQLAlchemy 2 handlers (``nplusone_app.py``: a shop and blog on an
in-memory SQLite database) and keeps the SQL the ORM emits, captured by a
``before_cursor_execute`` listener:

* ``lazy-loop:*`` (label True when its loop emitted 3 or more lazy loads): lazy loading in a
  loop over parent rows -- one-to-many, many-to-one, many-to-many, nested, a COUNT per row,
  attributes expired by a commit.
* ``eager:*`` and ``plain:profile`` (False): pages loaded with ``selectinload``,
  ``joinedload``, ``subqueryload``, ``contains_eager``, or a few distinct queries.
* ``lookalike:*`` (False): what repeats without being an N+1 -- a hand-batched ``IN (...)``, a
  loop of two, the same query with the same parameter (a missing cache), offset and keyset
  pagination, per-row INSERT/UPDATE loops (write batching, a different problem), one COUNT per
  status of a fixed list, an ``IN`` list sent in chunks, a handful of named settings read one by
  one (``fixed-lookups``: no loop over rows, but it looks like one to the detector).

A request starts like a web request (the session token, then the user), runs its handler, in
3 of 10 requests also a benign widget (an eager page or a look-alike), and in 3 of 10 ends with
an audit INSERT. It comes as a query log gives it: literals inline (7 in 10), or each statement
with ``?`` placeholders followed by the parameters line SQLAlchemy's echo log prints
(``"[generated in 0.00010s] (3, 'paid')"``).

Drift ``new-access-pattern``: most of the app's N+1 traffic moves to an activity feed whose
rows point at a target of their kind (a polymorphic association, six target tables): the lazy
loads spread over one template per table, a couple of repeats each, which the detector's
per-template scoring mostly misses.

The database content is fixed; the ``rng`` picks handlers, sizes, offsets and log styles, so
the same seed gives the same traffic. Handler traces are memoized per process (the ORM's SQL is
a function of the handler and its arguments), so generating gets cheap after the first requests.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from . import Labeled
from . import nplusone_app as app

DRIFTS: tuple[str, ...] = ("new-access-pattern",)

N_PLUS_ONE_MIN = 3  # lazy loads of one loop from which a request is labeled an N+1
WIDGET_SHARE = 0.3  # requests that also run a benign handler
AUDIT_SHARE = 0.3  # requests that end with an audit INSERT
INLINE_SHARE = 0.7  # logs with literals inline; the others are echo logs


@dataclass(frozen=True)
class Kind:
    name: str
    handler: app.Handler
    weight: float  # share of the undrifted traffic
    n_plus_one: bool = False  # a lazy-loading loop: True when it emitted >= 3 lazy loads
    sizes: tuple[int, int] = (3, 40)  # loop size drawn in [lo, hi]


KINDS = (
    Kind("lazy-loop:orders-of-users", app.lazy_orders_of_users, 0.07, n_plus_one=True),
    Kind("lazy-loop:author-of-posts", app.lazy_author_of_posts, 0.07, n_plus_one=True),
    Kind("lazy-loop:comments-of-posts", app.lazy_comments_of_posts, 0.06, n_plus_one=True),
    Kind("lazy-loop:tags-of-posts", app.lazy_tags_of_posts, 0.04, n_plus_one=True),
    Kind("lazy-loop:items-and-products", app.lazy_items_and_products, 0.05, n_plus_one=True,
         sizes=(3, 15)),
    Kind("lazy-loop:comment-counts", app.lazy_comment_counts, 0.04, n_plus_one=True),
    Kind("lazy-loop:expired-after-commit", app.lazy_expired_after_commit, 0.03,
         n_plus_one=True),
    Kind("plain:profile", app.profile_page, 0.10),
    Kind("eager:selectinload", app.eager_selectin, 0.07),
    Kind("eager:joinedload", app.eager_joined, 0.06),
    Kind("eager:subqueryload", app.eager_subquery, 0.04),
    Kind("eager:contains-eager", app.eager_contains, 0.03),
    Kind("lookalike:batched-in", app.batched_in, 0.04),
    Kind("lookalike:small-loop", app.small_loop, 0.06),
    Kind("lookalike:cache-miss", app.cache_miss, 0.05, sizes=(3, 10)),
    Kind("lookalike:offset-pagination", app.offset_pagination, 0.03, sizes=(2, 8)),
    Kind("lookalike:keyset-pagination", app.keyset_pagination, 0.03, sizes=(2, 8)),
    Kind("lookalike:write-loop", app.write_loop, 0.04, sizes=(3, 20)),
    Kind("lookalike:status-counts", app.status_counts, 0.04, sizes=(3, 6)),
    Kind("lookalike:chunked-in", app.chunked_in, 0.03, sizes=(2, 4)),
    Kind("lookalike:fixed-lookups", app.fixed_lookups, 0.02, sizes=(2, 5)),
)
FEED = Kind("lazy-loop:polymorphic-feed", app.feed, 0.0, n_plus_one=True, sizes=(3, 9))
_BY_NAME = {k.name: k for k in (*KINDS, FEED)}
_WIDGETS = [k for k in KINDS if not k.n_plus_one]


# ----------------------------------------------------------------------------- capturing SQL

Query = tuple[str, tuple[Any, ...]]


@dataclass
class _Recorder:
    """The statements one handler run emitted, and how many of them came from its loop."""

    queries: list[Query] = field(default_factory=list)
    loop_queries: int = 0
    _in_loop: bool = False

    def add(self, statement: str, parameters: Any) -> None:
        params = tuple(parameters) if isinstance(parameters, (list, tuple)) else ()
        # interned: the memoized traces share each statement's text
        self.queries.append((sys.intern(" ".join(statement.split())), params))
        if self._in_loop:
            self.loop_queries += 1

    @contextmanager
    def loop(self) -> Iterator[None]:
        self._in_loop = True
        try:
            yield
        finally:
            self._in_loop = False


@dataclass
class _Database:
    engine: Engine
    lock: threading.Lock
    recorder: _Recorder | None = None


@functools.cache
def _database() -> _Database:
    """The in-memory database, created and filled at the first request of the process."""
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})
    app.Base.metadata.create_all(engine)
    with Session(engine) as session:
        app.populate(session)
    db = _Database(engine, threading.Lock())

    @event.listens_for(engine, "before_cursor_execute")
    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                executemany: bool) -> None:
        if db.recorder is None:
            return
        for row in parameters if executemany else [parameters]:
            db.recorder.add(statement, row)

    return db


def _run(work: Callable[[Session, _Recorder], None]) -> tuple[tuple[Query, ...], int]:
    """The statements ``work`` emitted in a fresh session (rolled back), and its lazy loads."""
    db = _database()
    with db.lock, Session(db.engine) as session:
        rec = _Recorder()
        db.recorder = rec
        try:
            work(session, rec)
            session.rollback()
        finally:
            db.recorder = None
    return tuple(rec.queries), rec.loop_queries


# memoized: the ORM's SQL is a function of these arguments, the database content being fixed
@functools.cache
def _prologue(uid: int) -> tuple[Query, ...]:
    def work(s: Session, _rec: _Recorder) -> None:
        s.scalar(select(app.AuthSession).where(app.AuthSession.token == f"tok-{uid:05d}"))
        s.get(app.User, uid)
    return _run(work)[0]


@functools.lru_cache(maxsize=8192)
def _handler(kind: str, uid: int, size: int, offset: int) -> tuple[tuple[Query, ...], int]:
    return _run(lambda s, rec: _BY_NAME[kind].handler(s, rec, uid, size, offset))


@functools.cache
def _audit(uid: int, action: str) -> tuple[Query, ...]:
    def work(s: Session, _rec: _Recorder) -> None:
        s.add(app.AuditEntry(user_id=uid, action=action))
        s.flush()
    return _run(work)[0]


# ----------------------------------------------------------------------------- query log styles

def _literal(value: Any) -> str:
    if isinstance(value, (tuple, list)):  # an expanding parameter: the items of an IN list
        return ", ".join(_literal(v) for v in value)
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def inline(statement: str, params: tuple[Any, ...]) -> str:
    """The statement with its ``?`` parameters written in as SQL literals (ORM SQL carries no
    string literal of its own, so every ``?`` is a parameter); a sequence parameter writes the
    items of an ``IN`` list."""
    values = iter(params)
    return re.sub(r"\?", lambda _m: _literal(next(values, None)), statement)


def echo_params(params: tuple[Any, ...]) -> str:
    """The parameters line SQLAlchemy's echo log prints after a statement."""
    return f"[generated in 0.00010s] {params!r}"


def render(queries: Sequence[Query], style: str) -> list[str]:
    """A query log: ``inline`` (literals in the statements) or ``echo`` (each statement, then
    its parameters line)."""
    if style == "inline":
        return [inline(sql, params) for sql, params in queries]
    out: list[str] = []
    for sql, params in queries:
        out += [sql, echo_params(params)]
    return out


# ----------------------------------------------------------------------------- the generator

def _mix(drift: str | None) -> tuple[list[Kind], np.ndarray]:
    kinds = [*KINDS, FEED]
    w = np.array([k.weight for k in kinds])
    if drift == "new-access-pattern":
        n_plus_one = sum(k.weight for k in KINDS if k.n_plus_one)
        w[[i for i, k in enumerate(kinds) if k.n_plus_one]] *= 0.2
        w[-1] = 0.8 * n_plus_one
    elif drift is not None:
        raise ValueError(f"drift: expected one of {', '.join(DRIFTS)} or None, got {drift!r}")
    return kinds, w / w.sum()


def _size(rng: np.random.Generator, kind: Kind) -> int:
    lo, hi = kind.sizes
    return int(min(hi, lo + rng.geometric(0.15) - 1))


def generate(rng: np.random.Generator, n: int, *,
             drift: str | None = None) -> list[Labeled[list[str]]]:
    """``n`` labeled request query logs (a list of SQL strings each; see the module's doc).
    ``drift`` is one of ``DRIFTS`` or None."""
    kinds, p = _mix(drift)
    out: list[Labeled[list[str]]] = []
    for i in rng.choice(len(kinds), size=n, p=p):
        kind = kinds[int(i)]
        size = _size(rng, kind)
        offset = int(rng.integers(0, 12))  # a few pages of the data, so traces get reused
        uid = 1 + (offset * 17 + size) % app.USERS
        queries, lazy = _handler(kind.name, uid, size, offset)
        queries = _prologue(uid) + queries
        if rng.random() < WIDGET_SHARE:
            widget = _WIDGETS[int(rng.integers(0, len(_WIDGETS)))]
            queries += _handler(widget.name, uid, _size(rng, widget), offset)[0]
        if rng.random() < AUDIT_SHARE:
            queries += _audit(uid, kind.name.split(":")[-1])
        style = "inline" if rng.random() < INLINE_SHARE else "echo"
        label = kind.n_plus_one and lazy >= N_PLUS_ONE_MIN
        out.append(Labeled(render(queries, style), label, kind.name))
    return out


# ----------------------------------------------------------------------------- naive baseline

_NAIVE_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_SQL_VERB = re.compile(r"\s*(select|insert|update|delete|with)\b", re.IGNORECASE)


def naive_score(queries: Sequence[Any]) -> float:
    """The baseline: literals stripped, the most repeated statement's count ``c`` scored
    ``1 - 1/c`` (1 -> 0, 2 -> 0.5, 3 -> 0.67, 10 -> 0.9); lines that are not SQL statements
    (an echo log's parameters) are skipped, an (sql, params) pair counts its statement."""
    counts: Counter[str] = Counter()
    for q in queries:
        sql = q[0] if isinstance(q, (tuple, list)) else q
        if isinstance(sql, str) and _SQL_VERB.match(sql):
            counts[" ".join(_NAIVE_LITERAL.sub("?", sql.lower()).split())] += 1
    top = max(counts.values(), default=0)
    return 0.0 if top == 0 else 1.0 - 1.0 / top
