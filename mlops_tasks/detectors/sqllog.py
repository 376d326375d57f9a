"""SQL query logs as templates: what the N+1 detector reads.

``parse(sql, params)`` turns one statement into a :class:`Statement`: its template (string and
number literals and placeholders -- ``?``, ``%s``, ``%(name)s``, ``:name``, ``$1`` -- become
``?``; an ``IN`` list becomes ``(?+)`` and a multi-row ``VALUES`` list ``(?*)``, one slot each;
keywords and identifiers lower-cased and unquoted, dotted names one token; comments and
whitespace dropped), its verb, and per slot where it sits (``eq`` with the column compared,
``in``, ``range``, ``limit``, ``offset``...) and the value that filled it this time.

``entries(queries)`` reads a query log's accepted shapes into (sql, params) pairs:

* ``"SELECT ... WHERE id = 42"``: a statement with its literals inline;
* ``("SELECT ... WHERE id = ?", (42,))``: a statement and its parameters (a sequence for
  ``?``/``%s``/``$1``/``:1``, a mapping for ``:name``/``%(name)s``, or None);
* ``"SELECT ... WHERE id = ?"`` followed by ``"[generated in 0.0001s] (42,)"``: SQLAlchemy's
  echo log, the parameters line after its statement (``[cached since ...]``, ``[raw sql]``,
  ``parameters: ...`` lines too, also on the statement's own line after a newline).

Statements longer than ``MAX_STATEMENT_CHARS`` are read up to that length.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError

MAX_STATEMENT_CHARS = 20_000

_TOKENS = re.compile(r"""
    (?P<str>[EeNn]?'(?:[^']|'')*'?)
  | (?P<qid>"(?:[^"]|"")*"|`[^`]*`)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<num>(?<![\w$.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|0[xX][0-9a-fA-F]+)
  | (?P<ph>\?\d*|%s|%\(\w+\)s|:\w+|\$\d+)
  | (?P<word>[A-Za-z_][\w$]*)
  | (?P<op><=|>=|<>|!=|==|\|\||::|[=<>(),;*+\-/%.])
  | (?P<ws>\s+)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

_PARAMS_LINE = re.compile(  # SQLAlchemy's echo log, its error messages, PostgreSQL's log
    r"\s*(?:\[(?:generated in|cached since|raw sql|no key|dialect|insertmanyvalues)[^\]]*\]"
    r"\s*(?P<params>.*)"
    r"|\[parameters?:\s*(?P<bracketed>.*)\]\s*"
    r"|(?:DETAIL:\s*)?parameters?:\s*(?P<plain>.*))\Z", re.IGNORECASE | re.DOTALL)
_KEY_COLUMN = re.compile(r"(?:^|_)(?:id|pk|uuid|guid|key)$")  # id, user_id, post_pk...
_COMPARISONS = {"=": "eq", "==": "eq", "<": "range", ">": "range", "<=": "range",
                ">=": "range", "!=": "ne", "<>": "ne"}
_MIRRORED = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
_AFTER_WORD = {"limit": "limit", "offset": "offset", "like": "like", "ilike": "like",
               "between": "range", "is": "is", "top": "limit", "fetch": "limit"}
_VALUE_KINDS = ("str", "num", "ph")
READS = ("select", "with", "values", "show", "table")
UNKNOWN = object()  # a placeholder whose parameter the log does not give


# ----------------------------------------------------------------------------- templates

@dataclass(frozen=True)
class Slot:
    """Where a literal or placeholder sits: ``context`` (eq, ne, range, in, like, is, limit,
    offset, value) and the column it is compared with, when there is one."""

    context: str
    column: str | None = None

    @property
    def key_like(self) -> bool:
        column = (self.column or "").rsplit(".", 1)[-1]
        return bool(_KEY_COLUMN.search(column))


@dataclass(frozen=True)
class Statement:
    """One statement as a template: its text (no literal in it), verb, slots and the values
    that filled the slots this time."""

    template: str
    verb: str
    slots: tuple[Slot, ...]
    values: tuple[Any, ...]

    @property
    def fingerprint(self) -> str:
        return hashlib.blake2b(self.template.encode(), digest_size=8).hexdigest()


class _Params:
    """Hands out the parameters of one statement to its placeholders, in order or by name."""

    def __init__(self, params: Any) -> None:
        self.mapping: Mapping[Any, Any] = params if isinstance(params, Mapping) else {}
        if isinstance(params, Mapping):
            self.seq: Sequence[Any] = list(params.values())
        elif isinstance(params, (list, tuple)):
            self.seq = params
        else:
            self.seq = () if params is None else (params,)
        self.next = 0

    def take(self, placeholder: str) -> Any:
        """The value of ``placeholder`` (``?``, ``%s``: the next one; ``?3``, ``:3``, ``$3``:
        the third; ``:name``, ``%(name)s``: by name); UNKNOWN when the log lacks it."""
        name = placeholder[2:-2] if placeholder.startswith("%(") else placeholder[1:]
        if placeholder in ("?", "%s"):
            i, self.next = self.next, self.next + 1
        elif name.isdigit():
            i = int(name) - 1
        elif name in self.mapping:
            return _hashable(self.mapping[name])
        else:  # a name the parameters do not hold: take them in order
            i, self.next = self.next, self.next + 1
        return _hashable(self.seq[i]) if 0 <= i < len(self.seq) else UNKNOWN


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _tokens(sql: str) -> list[tuple[str, str]]:
    """``sql``'s tokens as (kind, text): no whitespace or comment, identifiers unquoted and
    lower-cased, dotted names (``"users"."id"``) one token."""
    out: list[tuple[str, str]] = []
    for m in _TOKENS.finditer(sql[:MAX_STATEMENT_CHARS]):
        kind = m.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        text = m.group()
        if kind == "qid":
            kind, text = "word", text[1:-1].replace('""', '"')
        if kind == "word":
            text = text.lower()
            if len(out) > 1 and out[-1][1] == "." and out[-2][0] == "word":
                out.pop()
                text = out.pop()[1] + "." + text
        elif text == "*" and len(out) > 1 and out[-1][1] == "." and out[-2][0] == "word":
            out.pop()
            kind, text = "word", out.pop()[1] + ".*"
        out.append((kind, text))
    return out


def _value(kind: str, text: str, params: _Params) -> Any:
    if kind == "ph":
        return params.take(text)
    if kind == "str":
        return text.lstrip("EeNn")
    return text


def _context(toks: list[tuple[str, str]], start: int, end: int) -> Slot:
    """The slot of the value(s) in ``toks[start:end]``, from its neighbours."""
    before = toks[start - 1][1] if start > 0 else ""
    after = toks[end][1] if end < len(toks) else ""
    if before in _COMPARISONS:
        column = toks[start - 2][1] if start > 1 and toks[start - 2][0] == "word" else None
        return Slot(_COMPARISONS[before], column)
    if before in _AFTER_WORD:
        return Slot(_AFTER_WORD[before])
    if before == "and" and start > 2 and toks[start - 3][1] == "between":
        return Slot("range")
    if after in _COMPARISONS:
        column = toks[end + 1][1] if end + 1 < len(toks) and toks[end + 1][0] == "word" \
            else None
        return Slot(_COMPARISONS[_MIRRORED.get(after, after)], column)
    return Slot("value")


def _group_end(toks: list[tuple[str, str]], i: int) -> int | None:
    """For ``(`` at ``i`` opening a list of plain values, the index of its ``)``."""
    j = i + 1
    while j < len(toks) and toks[j][0] in _VALUE_KINDS:
        j += 1
        if j < len(toks) and toks[j][1] == ",":
            j += 1
        elif j < len(toks) and toks[j][1] == ")":
            return j
        else:
            return None
    return None


def parse(sql: str, params: Any = None) -> Statement:
    """``sql`` (literals inline, or placeholders filled from ``params``) as a template."""
    toks = _tokens(sql)
    bind = _Params(params)
    out: list[str] = []
    slots: list[Slot] = []
    values: list[Any] = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        prev = out[-1] if out else ""
        if text == "(" and prev in ("in", "values") and (end := _group_end(toks, i)):
            group = [_value(k, t, bind) for k, t in toks[i + 1:end] if k in _VALUE_KINDS]
            if prev == "values":  # every row of a VALUES list: one slot, rows collapsed
                while end + 2 < len(toks) and toks[end + 1][1] == "," and \
                        toks[end + 2][1] == "(" and (nxt := _group_end(toks, end + 2)):
                    group += [_value(k, t, bind) for k, t in toks[end + 3:nxt]
                              if k in _VALUE_KINDS]
                    end = nxt
                out.append("(?*)")
                slots.append(Slot("value"))
            else:
                out.append("(?+)")
                j = i - 3 if i > 2 and toks[i - 2][1] == "not" else i - 2
                slots.append(Slot("in", toks[j][1] if j >= 0 and toks[j][0] == "word" else None))
            values.append(tuple(group))
            i = end + 1
            continue
        if kind in _VALUE_KINDS:
            out.append("?")
            slots.append(_context(toks, i, i + 1))
            values.append(_value(kind, text, bind))
        else:
            out.append(text)
        i += 1
    verb = next((t for k, t in toks if k == "word"), "")
    return Statement(" ".join(out), verb, tuple(slots), tuple(values))


def _params_text(line: re.Match[str]) -> Any:
    """The parameters of a log's parameters line: a Python literal as SQLAlchemy prints it,
    else the literals found in it."""
    text = next(g for g in line.groups() if g is not None).strip()
    if len(text) <= MAX_STATEMENT_CHARS:
        try:
            return ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
    return [t for k, t in _tokens(text) if k in ("str", "num")]


def entries(queries: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """(sql, params) for each statement of a query log, in order (see the module's doc)."""
    pending: str | None = None
    for index, entry in enumerate(queries):
        if isinstance(entry, str):
            line = _PARAMS_LINE.match(entry)
            if line is not None and pending is not None:
                yield pending, _params_text(line)
                pending = None
                continue
            if pending is not None:
                yield pending, None
            pending = None
            if line is not None:  # a parameters line of no statement: nothing to score
                continue
            head, newline, tail = entry.partition("\n")
            inline = _PARAMS_LINE.match(tail) if newline else None
            if inline is not None:
                yield head, _params_text(inline)
            else:
                pending = entry
        elif isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str):
            if pending is not None:
                yield pending, None
                pending = None
            yield entry[0], entry[1]
        else:
            raise ValidationError(f"queries[{index}]: expected an SQL string or an (sql, "
                                  f"params) pair, got {type(entry).__name__}")
    if pending is not None:
        yield pending, None
