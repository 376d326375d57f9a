"""waf-behavioral: one client's behaviour over a sliding window, as an anomaly score in [0, 1].

A request is a mapping with ``ts`` (epoch seconds), ``client``, ``method``, ``path``, ``query``
(raw query string or form body), ``status``, ``user_agent`` and ``bytes``. Each request is reduced
once to its *facts* (``request_facts``): its status, a keyed digest of its templated path,
whether the path is a known probe target, which payload signatures its decoded values carry,
whether it is a login attempt (and a keyed digest of the username tried), its method and
whether its user agent is a known scanner. A window's facts aggregate into ``SessionFeatures``
and a logistic combination of them (``anomaly_score``) gives the score. The raw request, its
payload and the client's address never leave this module: what is reported carries the
client's pseudonym and the feature values only.

Decoding before the signatures
    Query strings and form bodies are split into values *before* decoding (so an encoded ``&``
    stays inside its value), then each value is URL-decoded until it stops changing (at most
    three rounds: double and triple encoding, ``%%32%65``), overlong UTF-8 dots and slashes
    (``%c0%ae``) are folded, HTML entities are unescaped, NUL bytes dropped, backslashes made
    slashes, the text lower-cased, SQL comments (``/**/``, ``/*!50000 ... */``) turned into
    spaces and runs of spaces and tabs collapsed (newlines kept: they separate
    commands). ``%uXXXX``, JSON ``\\uXXXX`` escapes and base64 are *not*
    decoded (the simulator's "new-attack-style" drift uses them).

Signature families
    sqli, xss, traversal, cmdi, ssrf, log4shell; see ``SIGNATURES``. They are written to fire
    on attacks, not to be silent on everything else: search terms such as "javascript: the good
    parts" and a forum post quoting ``SELECT * FROM t WHERE ...`` do fire. One hit is therefore
    weak evidence; repeated, varied hits that draw errors are strong.

The score, in logit units (``WEIGHTS``; score = 1 / (1 + exp(-z)); 0.7 is z = 0.85)
    term         weight  value                                       why
    bias          -4.2   1                                           nothing seen: 0.015
    payload        1.6   log2(1 + distinct payloads)                 1: +1.6, 3: +3.2, 7: +4.8
    families       0.8   attack classes - 1                          one client trying several
    payload_share  2.0   requests with a payload / requests          fuzzing vs. one post
    payload_err    1.2   share of payload requests answered >= 400   blocked, or crashed
    probe          2.5   log2(1 + requests for probe targets)        /.env, /.git, actuator ...
    scan           3.0   404 share * min(1, distinct paths / 15)     many paths, most missing
    client_err     2.0   4xx share * min(1, n / 20)                  damped while n is small
    server_err     0.5   5xx share * min(1, n / 20)                  mostly the server's fault
    logins         3.0   min(1, max(0, failed logins - 3) / 10)      401/403 on login paths
    usernames      1.5   min(3, distinct usernames tried - 1)        a typo, or a list
    fast_wide      1.0   min(1, log10(1 + rate/min / 60)) * path entropy (normalized)
    methods        2.0   min(1, TRACE/PROPFIND/... requests / 3)
    scanner_ua     1.2   a known scanner's user agent                trivially spoofed: weak
    agents         0.4   min(1, (distinct user agents - 1) / 3)      rotation (or an office)

    Why these values: one signature hit, a burst of 404s or a run of 5xx alone must stay well
    under the default threshold (a forum post, an SPA, a retrying mobile client produce them),
    so it takes two independent kinds of evidence, or one kind repeated, to cross it: one
    payload in a 20-request session scores 0.08, three distinct payloads in three requests
    0.73. The error terms are damped below 20 requests so one dead link is not a 100 % error
    ratio; 5xx weigh a quarter of 4xx because a crashing endpoint makes honest clients retry.
    A request for a well-known sensitive file (``/.env``, ``/.git/config``) is rare in honest
    traffic, so probes weigh most: one scores 0.15, three 0.69 before their 404s count. Failed
    logins count from the fourth (a forgotten password) and usernames from the second (a typo).
    The weights were set by hand from these rules and checked on simulator seeds other than the
    benchmark's (``bench/detectors/waf.py``).

Streaming (online) use
    ``detect_request(request)`` appends the request to its client's window (the last
    ``window_s`` seconds, at most ``max_requests_per_client`` requests), scores that window,
    decides and reports; ``observe(request)`` does the same without deciding or reporting.
    Windows are bounded: at most ``max_clients`` clients, least recently seen evicted first,
    and a client idle for ``window_s`` is dropped. A window keeps facts, never payloads.

Pseudonyms
    ``pseudonym(client)`` is HMAC-SHA256 of the client identifier under ``pseudonym_key``
    (default: the setting ``MLOPS_PSEUDONYM_KEY`` when set, else a random key drawn once per
    process), hex, first 16 characters. Usernames tried on login endpoints are
    digested with the same key and kept only to be counted.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import math
import re
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, unquote_plus

from ..errors import ValidationError
from .base import Detection, ReferenceDetector

if TYPE_CHECKING:
    from ..client import MonitoringClient
    from ..settings import Settings


# ------------------------------------------------------------------------------------ decoding

_DECODE_ROUNDS = 3
_OVERLONG = re.compile(r"%(?:c0%ae|c0%2e|e0%80%ae|c0%af|c1%9c|c1%1c|c0%5c|c1%af)", re.IGNORECASE)
_OVERLONG_CHARS = {"%c0%ae": ".", "%c0%2e": ".", "%e0%80%ae": ".", "%c0%af": "/",
                   "%c1%af": "/", "%c1%9c": "/", "%c1%1c": "/", "%c0%5c": "/"}
_SQL_COMMENT = re.compile(r"/\*!?\d*|\*/")
_SPACES = re.compile(r"[ \t\f\v\r]+")  # newlines stay: a command separator


def _fold_overlong(text: str) -> str:
    return _OVERLONG.sub(lambda m: _OVERLONG_CHARS[m.group(0).lower()], text)


@lru_cache(maxsize=65536)
def decode_value(raw: str, *, plus_is_space: bool = True) -> str:
    """One value as the application may end up reading it: URL-decoded until stable (at most
    three rounds), overlong UTF-8 folded, HTML entities unescaped, NUL dropped, backslashes as
    slashes, lower case, SQL comments as spaces, whitespace collapsed."""
    text = raw
    unq = unquote_plus if plus_is_space else unquote
    for _ in range(_DECODE_ROUNDS):
        decoded = unq(_fold_overlong(text), errors="replace")
        if decoded == text:
            break
        text = decoded
    text = html.unescape(text).replace("\x00", "").replace("\\", "/").lower()
    text = _SQL_COMMENT.sub(" ", text)
    return _SPACES.sub(" ", text).strip(" ")


def split_values(raw: str) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of a query string or form body, split before decoding; a text
    that is not ``k=v&...`` (JSON, XML, free text) is one value with an empty name."""
    if not raw:
        return []
    if "=" not in raw or raw.lstrip()[:1] in "{[<":
        return [("", raw)]
    pairs = []
    for part in raw.split("&"):
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return pairs


# ---------------------------------------------------------------------------------- signatures

_SHELL_COMMANDS = (r"(?:cat|ls|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|ping|"
                   r"nslookup|dig|sleep|systeminfo|ipconfig|ifconfig|powershell|cmd(?:\.exe)?|"
                   r"perl|python[23]?|php|echo|type|dir|net user|rm|chmod|telnet|uname|passwd)")

SIGNATURES: dict[str, tuple[re.Pattern[str], ...]] = {
    "sqli": tuple(re.compile(p) for p in (
        r"\bunion\b(?:\s+(?:all|distinct))?\s*\(?\s*select\b",
        (r"['\"`)]\s*(?:or|and|xor|\|\||&&)\s*\(?\s*['\"]?\s*[\w'\"]+\s*['\"]?\s*"
        r"(?:=|<|>|\blike\b|\bis\b|\bin\b|\bbetween\b)"),
        r"\b(?:or|and)\s+\(?\s*\d+\s*[=<>]\s*\d+",
        r"\b(?:sleep|benchmark|pg_sleep|dbms_pipe\.receive_message|randomblob)\s*\(",
        r"\bwaitfor\s+delay\s+'",
        (r"['\"`)]\s*;\s*(?:drop|delete|insert|update|shutdown|exec(?:ute)?|declare|create|"
         r"alter)\b"),
        r"['\"`)]\s*(?:--|#)",
        r";\s*(?:drop|truncate|shutdown)\b\s*(?:table|database|--|#|$)",
        (r"@@(?:version|datadir|hostname|servername)|\binformation_schema\b|\bsysobjects\b|"
        r"\bpg_catalog\b|\bxp_cmdshell\b|\bload_file\s*\(|\binto\s+(?:out|dump)file\b"),
        r"\b(?:extractvalue|updatexml|convert|cast)\s*\(.*\bselect\b",
        r"\bselect\s+(?:\*|null\b|@@|\d+\s*,\s*\d+|char\s*\(|concat\s*\(|count\s*\(\s*\*)",
        r"\bchar\s*\(\s*\d+\s*\)\s*(?:\+|\|\||,)",
        r"\border\s+by\s+\d+\s*(?:--|#|$)",
        r"\bhaving\s+\d+\s*=\s*\d+",
    )),
    "xss": tuple(re.compile(p) for p in (
        (r"<\s*/?\s*(?:script|iframe|svg|object|embed|applet|frameset|meta|base|marquee|"
        r"isindex|xss|math|details|keygen)\b"),
        r"<[^>]*\bon[a-z]{3,}\s*=",
        (r"[\"'\s/]on(?:error|load|mouseover|focus|click|toggle|start|begin|end|"
         r"afterscriptexecute|animationstart|pageshow|resize|wheel|pointer\w*|touch\w*)\s*="),
        r"\b(?:java|vb)script\s*:",
        r"\bdata\s*:\s*text/html",
        r"\b(?:alert|prompt|confirm)\s*(?:\(|`)",
        r"\bdocument\s*\.\s*(?:cookie|domain|write)\b",
        r"\bstring\s*\.\s*fromcharcode\b",
        r"\beval\s*\(",
    )),
    "traversal": tuple(re.compile(p) for p in (
        r"(?:\.{2,}/+){2,}",
        r"(?:^|/)\.{2,}/+.*(?:etc|windows|winnt|boot\.ini|proc|var)",
        (r"/etc/(?:passwd|shadow|hosts|group|issue)\b|\bboot\.ini\b|\bwin\.ini\b|"
        r"/windows/system32\b|/proc/self/|/\.ssh/|\bweb\.config\b|\bwp-config\.php\b|"
        r"\.htpasswd\b"),
        r"\b(?:php|expect|zip|phar|glob)://",
    )),
    "cmdi": tuple(re.compile(p) for p in (
        rf"(?:[;&|`\n]|\$\()\s*{_SHELL_COMMANDS}\b",
        rf"`\s*{_SHELL_COMMANDS}\b",
        r"\(\s*\)\s*\{\s*:\s*;\s*\}",
        r"/bin/(?:ba|z|da)?sh\b|/usr/bin/(?:id|whoami|wget|curl|perl|python)\b|\bcmd\.exe\b",
        r"\{\$\{(?:phpinfo|sleep|system)\b",
    )),
    "ssrf": tuple(re.compile(p) for p in (
        (r"\b(?:https?|ftp|ldap|tftp|jar|netdoc)://(?:[^/\s@]*@)?(?:\[[0-9a-f:.]*\]|localhost|"
        r"127\.|0\.0\.0\.0|0+(?:[:/]|$)|0x[0-9a-f]+|0o?[0-7]+\.|\d{8,10}(?:[:/]|$)|169\.254\.|"
        r"10\.\d|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.|100\.100\.100\.200|metadata|"
        r"instance-data|[^/\s]*\.internal\b|[^/\s]*\.nip\.io\b|ip6-)"),
        r"\b(?:gopher|dict|file)://",
        r"\bhttps?://[^/\s]*[@\\]+@?[^/\s]*\d",
    )),
    "log4shell": (
        re.compile(r"\$\{\s*jndi\s*:"),
        re.compile(r"\bjndi:(?:ldaps?|rmi|dns|iiop|corba|nds|nis|http)\b"),
    ),
}
FAMILIES = tuple(SIGNATURES)

# ${lower:j}, ${upper:j}, ${::-j}, ${env:X:-j}, ${date:'j'} -> j  (log4j lookups that hide jndi)
_LOG4J_LOOKUP = re.compile(r"\$\{(?:lower|upper):([^${}]*)\}|\$\{[^${}]*?:-([^${}]*)\}|"
                           r"\$\{date:'([^${}']*)'\}")


def _unwrap_lookups(text: str) -> str:
    for _ in range(8):
        unwrapped = _LOG4J_LOOKUP.sub(lambda m: m.group(1) or m.group(2) or m.group(3) or "",
                                      text)
        if unwrapped == text:
            break
        text = unwrapped
    return text


@lru_cache(maxsize=65536)
def signature_families(text: str) -> frozenset[str]:
    """The signature families a decoded value matches."""
    if "${" in text:
        text = _unwrap_lookups(text)
    return frozenset(family for family, patterns in SIGNATURES.items()
                     if any(p.search(text) for p in patterns))


# -------------------------------------------------------------------------------- probe paths

_PROBE_PATTERNS = (
    r"/\.(?:env|git|svn|hg|bzr|ds_store|htaccess|htpasswd|aws|ssh|docker|npmrc|vscode|idea)\b",
    r"wp-(?:admin|login|config|content|includes)|xmlrpc\.php|phpmyadmin|/pma\b|myadmin|adminer",
    r"\.(?:bak|old|orig|save|swp|sql|sqlite|backup|inc|mdb|pem|key)$",
    r"/(?:backup|site|www|db|dump|database|web|public_html|old)\.(?:zip|tar|tgz|tar\.gz|rar|7z)$",
    (r"/(?:cgi-bin|actuator|server-status|server-info|jmx-console|manager/html|solr|jenkins|"
    r"hnap1|boaform|owa|autodiscover|vendor/phpunit|telescope|_profiler|elmah\.axd|trace\.axd|"
    r"web-inf|meta-inf|shell|webshell|c99|r57|phpinfo)\b"),
    (r"/(?:config|configuration|settings|database|db|install|setup|test|info|shell|cmd|upload|"
    r"admin|login|index)\.(?:php|asp|aspx|jsp|cgi|pl)\b"),
)
_PROBE_PATH = re.compile("|".join(_PROBE_PATTERNS))
_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-f]{8,}|[0-9a-f]{8}-[0-9a-f-]{27,})$")

_SCANNER_AGENT = re.compile(
    r"nikto|sqlmap|nmap|masscan|zgrab|gobuster|dirbuster|dirb\b|wfuzz|ffuf|fuzz faster|nuclei|"
    r"acunetix|nessus|openvas|w3af|burp|wpscan|whatweb|arachni|skipfish|jaeles|zaproxy|"
    r"netsparker|qualys|hydra", re.IGNORECASE)
_LOGIN_PATH = re.compile(r"(?:^|/)(?:login|signin|sign-in|logon|auth|session|sessions|token|"
                         r"oauth/token|wp-login\.php|xmlrpc\.php)(?:/|$|\.)", re.IGNORECASE)
_USERNAME_FIELDS = frozenset({"username", "user", "email", "login", "log", "user_login", "usr",
                              "name", "account"})
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def template_path(path: str) -> str:
    """The path without its query, ids and long hex as ``{id}``: what makes two requests hit
    "the same page" for the path entropy."""
    path = path.split("?", 1)[0].lower()
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


# ------------------------------------------------------------------------------------ requests

@dataclass(frozen=True)
class RequestFacts:
    """What the detector keeps of one request: numbers, flags and keyed digests (of the
    templated path, the payloads, the username and the user agent, only to be counted); no
    address, no path, no query, no payload."""

    ts: float
    status: int
    path_digest: str
    probe: bool
    families: frozenset[str]
    payload_digest: str | None
    login_attempt: bool
    username_digest: str | None
    method: str
    agent_digest: str
    scanner_agent: bool


def _field(request: Mapping[str, Any], name: str, index: int, default: Any = None) -> Any:
    value = request.get(name, default)
    if value is None:
        raise ValidationError(f"requests[{index}].{name}: expected a value, got nothing")
    return value


def _number(request: Mapping[str, Any], name: str, index: int) -> float:
    value = _field(request, name, index)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"requests[{index}].{name}: expected a number, "
                              f"got {type(value).__name__}")
    return float(value)


def _text(request: Mapping[str, Any], name: str, index: int) -> str:
    value = _field(request, name, index, "")
    if not isinstance(value, str):
        raise ValidationError(f"requests[{index}].{name}: expected text, "
                              f"got {type(value).__name__}")
    return value


def request_facts(request: Mapping[str, Any], key: bytes, index: int = 0) -> RequestFacts:
    """Reduce one request to its facts (``key`` keys their digests). ValidationError names
    the field of a malformed request, never its content."""
    if not isinstance(request, Mapping):
        raise ValidationError(f"requests[{index}]: expected a mapping, "
                              f"got {type(request).__name__}")
    ts = _number(request, "ts", index)
    status = int(_number(request, "status", index))
    method = _text(request, "method", index).upper() or "GET"
    path = _text(request, "path", index)
    query = _text(request, "query", index)
    agent = _text(request, "user_agent", index)
    path_only, _, path_query = path.partition("?")
    decoded_path = decode_value(path_only, plus_is_space=False)
    families: set[str] = set(signature_families(decoded_path))
    hits = [decoded_path] if families else []
    username = None
    for name, value in split_values("&".join(q for q in (path_query, query) if q)):
        decoded = decode_value(value)
        found = signature_families(decoded)
        if found:
            families |= found
            hits.append(decoded)
        if name.lower() in _USERNAME_FIELDS and decoded:
            username = decoded
    if agent:  # a header's text: a command at its start is not a command
        found = signature_families("ua:" + decode_value(agent, plus_is_space=False))
        if found:
            families |= found
            hits.append(agent)
    login = method == "POST" and _LOGIN_PATH.search(path_only) is not None
    return RequestFacts(
        ts=ts, status=status, path_digest=_digest(key, template_path(path_only)),
        probe=_PROBE_PATH.search(decoded_path) is not None,
        families=frozenset(families),
        payload_digest=_digest(key, "\n".join(hits)) if hits else None, login_attempt=login,
        username_digest=_digest(key, username) if login and username else None,
        method=method, agent_digest=_digest(key, agent),
        scanner_agent=_SCANNER_AGENT.search(agent) is not None)


def _digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:16]


# ------------------------------------------------------------------------------------ features

@dataclass(frozen=True)
class SessionFeatures:
    """One client's window, as numbers (what the score and the reported metadata are made of)."""

    requests: int
    duration_s: float
    rate_per_min: float
    client_error_ratio: float
    server_error_ratio: float
    not_found_ratio: float
    distinct_paths: int
    path_entropy_norm: float
    probe_requests: int
    probe_ratio: float
    payload_requests: int
    payload_variants: int
    payload_families: tuple[str, ...]
    payload_error_ratio: float
    login_attempts: int
    failed_logins: int
    distinct_usernames: int
    unusual_methods: int
    distinct_agents: int
    scanner_agent: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["payload_families"] = list(self.payload_families)
        for name in ("duration_s", "rate_per_min", "client_error_ratio", "server_error_ratio",
                     "not_found_ratio", "path_entropy_norm", "probe_ratio",
                     "payload_error_ratio"):
            out[name] = round(out[name], 4)
        return out


def _entropy_norm(counts: Iterable[int], n: int) -> float:
    """Shannon entropy of the distribution ``counts`` over ``n`` items, divided by log2(n):
    0 when every request hits one path, 1 when every request hits a different one."""
    if n < 2:
        return 0.0
    h = sum(c / n * math.log2(n / c) for c in counts)
    return h / math.log2(n)


def session_features(facts: Sequence[RequestFacts]) -> SessionFeatures:
    """Aggregate a window of request facts (any order) into its features."""
    n = len(facts)
    if n == 0:
        return SessionFeatures(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0, 0.0, 0, 0, (), 0.0, 0, 0,
                               0, 0, 0, scanner_agent=False)
    stamps = [f.ts for f in facts]
    duration = max(stamps) - min(stamps)
    client_err = sum(400 <= f.status < 500 for f in facts)
    server_err = sum(f.status >= 500 for f in facts)
    paths = Counter(f.path_digest for f in facts)
    probes = sum(f.probe for f in facts)
    hits = [f for f in facts if f.families]
    families = sorted(set().union(*(f.families for f in hits))) if hits else []
    logins = [f for f in facts if f.login_attempt]
    return SessionFeatures(
        requests=n,
        duration_s=duration,
        rate_per_min=n / max(duration, 10.0) * 60.0,
        client_error_ratio=client_err / n,
        server_error_ratio=server_err / n,
        not_found_ratio=sum(f.status == 404 for f in facts) / n,
        distinct_paths=len(paths),
        path_entropy_norm=_entropy_norm(paths.values(), n),
        probe_requests=probes,
        probe_ratio=probes / n,
        payload_requests=len(hits),
        payload_variants=len({f.payload_digest for f in hits}),
        payload_families=tuple(families),
        payload_error_ratio=(sum(f.status >= 400 for f in hits) / len(hits)) if hits else 0.0,
        login_attempts=len(logins),
        failed_logins=sum(f.status in {401, 403} for f in logins),
        distinct_usernames=len({f.username_digest for f in logins if f.username_digest}),
        unusual_methods=sum(f.method not in STANDARD_METHODS for f in facts),
        distinct_agents=len({f.agent_digest for f in facts}),
        scanner_agent=any(f.scanner_agent for f in facts),
    )


# ------------------------------------------------------------------------------------ the score

@dataclass(frozen=True)
class Weights:
    """The logit weights of ``anomaly_score``; see the module's docstring for why each."""

    bias: float = -4.2
    payload: float = 1.6
    families: float = 0.8
    payload_share: float = 2.0
    payload_err: float = 1.2
    probe: float = 2.5
    scan: float = 3.0
    client_err: float = 2.0
    server_err: float = 0.5
    logins: float = 3.0
    usernames: float = 1.5
    fast_wide: float = 1.0
    methods: float = 2.0
    scanner_ua: float = 1.2
    agents: float = 0.4


WEIGHTS = Weights()


def evidence(f: SessionFeatures, w: Weights = WEIGHTS) -> dict[str, float]:
    """Each term of the logit (bias excluded), by name: what pushed a score up."""
    confidence = min(1.0, f.requests / 20.0)
    return {
        "payload": w.payload * math.log2(1 + f.payload_variants),
        "families": w.families * max(0, len(f.payload_families) - 1),
        "payload_share": w.payload_share * f.payload_requests / max(1, f.requests),
        "payload_err": w.payload_err * f.payload_error_ratio,
        "probe": w.probe * math.log2(1 + f.probe_requests),
        "scan": w.scan * f.not_found_ratio * min(1.0, f.distinct_paths / 15.0),
        "client_err": w.client_err * f.client_error_ratio * confidence,
        "server_err": w.server_err * f.server_error_ratio * confidence,
        "logins": w.logins * min(1.0, max(0, f.failed_logins - 3) / 10.0),
        "usernames": w.usernames * min(3, max(0, f.distinct_usernames - 1)),
        "fast_wide": w.fast_wide * min(1.0, math.log10(1 + f.rate_per_min / 60.0))
        * f.path_entropy_norm,
        "methods": w.methods * min(1.0, f.unusual_methods / 3.0),
        "scanner_ua": w.scanner_ua * float(f.scanner_agent),
        "agents": w.agents * min(1.0, max(0, f.distinct_agents - 1) / 3.0),
    }


def anomaly_score(f: SessionFeatures, w: Weights = WEIGHTS) -> float:
    """The logistic combination of a window's features, in [0, 1]."""
    if f.requests == 0:
        return 0.0
    z = w.bias + sum(evidence(f, w).values())
    return 1.0 / (1.0 + math.exp(-z))


# ----------------------------------------------------------------------------------- pseudonyms

@lru_cache(maxsize=1)
def _process_key() -> bytes:
    return secrets.token_bytes(32)


def default_pseudonym_key(settings: Settings) -> bytes:
    """``MLOPS_PSEUDONYM_KEY`` when set, else a random key drawn once per process (pseudonyms
    then stable within the process only)."""
    if settings.pseudonym_key:
        return settings.pseudonym_key.encode()
    return _process_key()


# ---------------------------------------------------------------------------------- the windows

class ClientWindows:
    """Per-client sliding windows of request facts, bounded in clients and requests.

    ``add`` trims the client's window to the last ``window_s`` seconds (by request time) and
    ``max_requests_per_client`` requests, marks the client most recently seen, and evicts the
    least recently seen clients beyond ``max_clients`` and those idle for ``window_s``."""

    def __init__(self, *, window_s: float = 300.0, max_clients: int = 10_000,
                 max_requests_per_client: int = 1_000) -> None:
        if window_s <= 0 or max_clients < 1 or max_requests_per_client < 1:
            raise ValidationError("windows: expected window_s > 0, max_clients >= 1 and "
                                  "max_requests_per_client >= 1, got "
                                  f"{window_s}, {max_clients}, {max_requests_per_client}")
        self.window_s = window_s
        self.max_clients = max_clients
        self.max_requests_per_client = max_requests_per_client
        self._windows: OrderedDict[str, deque[RequestFacts]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def __contains__(self, client: object) -> bool:
        return client in self._windows

    def add(self, client: str, facts: RequestFacts) -> list[RequestFacts]:
        """Append ``facts`` to ``client``'s window; the window as it now stands."""
        window = self._windows.pop(client, None)
        if window is None:
            window = deque(maxlen=self.max_requests_per_client)
        window.append(facts)
        horizon = facts.ts - self.window_s
        while window and window[0].ts < horizon:
            window.popleft()
        self._windows[client] = window
        self._evict(horizon)
        return list(window)

    def _evict(self, horizon: float) -> None:
        while len(self._windows) > self.max_clients:
            self._windows.popitem(last=False)
        while self._windows:
            oldest = next(iter(self._windows.values()))
            if oldest and oldest[-1].ts >= horizon:
                break
            self._windows.popitem(last=False)


# ---------------------------------------------------------------------------------- the detector

class WafBehavioralDetector(ReferenceDetector):
    """A client's behaviour over a sliding window as an anomaly score; see the module docstring.

    Offline: ``score_session(requests)``, ``observe(request)``. With a client: ``detect_session``
    and ``detect_request`` decide by the registry's ``decision_threshold`` and report the score,
    the decision and metadata holding the client's pseudonym and the feature values only."""

    model: ClassVar[str] = "waf-behavioral"

    def __init__(self, decision_threshold: float | None = None, *,
                 client: MonitoringClient | None = None, settings: Settings | None = None,
                 pseudonym_key: bytes | None = None, window_s: float = 300.0,
                 max_clients: int = 10_000, max_requests_per_client: int = 1_000) -> None:
        if pseudonym_key is not None and not pseudonym_key:
            raise ValidationError("pseudonym_key: expected at least one byte, got b''")
        super().__init__(decision_threshold, client=client, settings=settings)
        self._key = pseudonym_key or default_pseudonym_key(self.settings)
        self.windows = ClientWindows(window_s=window_s, max_clients=max_clients,
                                     max_requests_per_client=max_requests_per_client)

    # ------------------------------------------------------------------ pure scoring
    def pseudonym(self, client: object) -> str:
        """The keyed hash that stands for ``client`` in everything reported."""
        return _digest(self._key, str(client))

    def facts(self, requests: Sequence[Mapping[str, Any]]) -> list[RequestFacts]:
        return [request_facts(r, self._key, i) for i, r in enumerate(requests)]

    def features(self, requests: Sequence[Mapping[str, Any]]) -> SessionFeatures:
        return session_features(self.facts(requests))

    def score_session(self, requests: Sequence[Mapping[str, Any]]) -> float:
        """The anomaly score in [0, 1] of one client's requests (in time order)."""
        return anomaly_score(self.features(requests))

    def observe(self, request: Mapping[str, Any]) -> float:
        """Add one request to its client's window and score that window (no decision, no
        report)."""
        return anomaly_score(session_features(self._window_for(request)))

    # ------------------------------------------------------------------ decisions
    def detect_session(self, requests: Sequence[Mapping[str, Any]], *,
                       actual: bool | None = None) -> Detection:
        """Score one client's requests, decide by the threshold in force and report."""
        if not self.enabled:
            return self.disabled()
        started = time.perf_counter()
        facts = self.facts(requests)
        client = requests[0].get("client", "") if requests else ""
        return self._decide(facts, client, actual, started)

    def detect_request(self, request: Mapping[str, Any], *,
                       actual: bool | None = None) -> Detection:
        """Add one request to its client's window, score the window, decide and report: the
        online form, one decision per request (block or let through)."""
        if not self.enabled:
            return self.disabled()
        started = time.perf_counter()
        window = self._window_for(request)
        return self._decide(window, request.get("client", ""), actual, started)

    def _window_for(self, request: Mapping[str, Any]) -> list[RequestFacts]:
        facts = request_facts(request, self._key)
        return self.windows.add(str(request.get("client", "")), facts)

    def _decide(self, facts: Sequence[RequestFacts], client: object, actual: bool | None,
                started: float) -> Detection:
        features = session_features(facts)
        score = anomaly_score(features)
        metadata = {"client": self.pseudonym(client), **features.to_dict()}
        latency_ms = (time.perf_counter() - started) * 1000.0
        return self.decide(score, actual=actual, metadata=metadata, latency_ms=latency_ms)
