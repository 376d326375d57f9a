"""Labeled client sessions for waf-behavioral: benign traffic, its look-alikes, and attacks.

``generate(rng, n, drift=None)`` returns ``n`` sessions, each a ``Labeled`` list of requests of
one client in time order (``ts``, ``client``, ``method``, ``path``, ``query``, ``status``,
``user_agent``, ``bytes``), ``label`` True for a malicious client, ``kind`` naming what made it.

Attack strings come from the vendored PayloadsAllTheThings subset in ``data/waf_*.txt`` (see
``data/waf_SOURCES.md``); they are inserted URL-encoded, sometimes double-encoded, with mixed
case or SQL comments for spaces. The benign side is mostly the look-alikes a WAF is judged on:
searches with SQL words ("select a plan", "union station"), names with apostrophes, code in a
developer forum's POST bodies, health checks hitting one path every few seconds, SPAs bursting
with some 404s, known crawlers walking many pages, mobile clients retrying on 5xx, a user who
forgot a password, an API integration polling into a 429.

Drift kinds (``DRIFTS``)
    ``new-attack-style``  attackers adapt: payloads hidden by encodings the detector does not
                          decode (IIS ``%uXXXX``, JSON ``\\uXXXX`` escapes, base64 parameters),
                          low-and-slow credential stuffing spread over many addresses, and
                          stealthy scanners with a browser's user agent interleaving real pages;
                          recall drops.
    ``lookalike-surge``   the benign side shifts: a security course's forum posts many snippets
                          per user, a QA link checker walks the site into 404s, a buggy mobile
                          release retries on 5xx and 400s; precision drops.
    ``throttled-attacks`` attackers learned the blocking threshold and stay under it: four
                          payloads per session among real pages, two probes per address; their
                          sessions score between the look-alikes and the threshold, so recall
                          drops and a lower threshold wins most of it back (the demo's drift).

``naive_score(requests)`` is the baseline the detector is measured against: the session's error
rate plus 0.5 when any request carries a keyword (``select``, ``<script``, ``../`` ...) after one
round of URL-decoding, capped at 1 (flag at 0.5).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import numpy as np

from . import Labeled

Request = dict[str, Any]
Session = list[Request]

DRIFTS = ("new-attack-style", "lookalike-surge", "throttled-attacks")
DEFAULT_START_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SPAN_S = 3600.0  # sessions start within one hour of start_ts

# ------------------------------------------------------------------------------ vocabulary

BROWSER_AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/126.0.0.0 Safari/537.36"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Safari/605.1.15"),
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/126.0.6478.71 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.92"),
)
CRAWLER_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"),
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
)
MONITOR_AGENTS = ("kube-probe/1.30", "Prometheus/2.53.0", "ELB-HealthChecker/2.0",
                  "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
                  "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)")
MOBILE_AGENTS = ("ShopApp/5.2.1 (iPhone; iOS 17.5; Scale/3.00) Alamofire/5.9.1",
                 "ShopApp/5.2.0 (Android 14; Pixel 7) okhttp/4.12.0")
SCRIPT_AGENTS = ("python-requests/2.32.3", "curl/8.8.0", "Go-http-client/1.1",
                 "axios/1.7.2")
SCANNER_AGENTS = (
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)",
    "sqlmap/1.8.6#stable (https://sqlmap.org)",
    "gobuster/3.6",
    "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
    "Fuzz Faster U Fool v2.1.0",
    "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
    "Mozilla/5.0 zgrab/0.x",
)
LINKCHECK_AGENT = "LinkChecker/10.4.0 (+https://linkchecker.github.io/)"

PAGES = ("/", "/products", "/cart", "/account", "/about", "/help", "/blog", "/forum",
         "/contact", "/pricing", "/careers", "/deals")
SLUGS = ("getting-started", "spring-sale", "shipping-times", "returns", "gift-cards",
         "size-guide", "our-story", "sustainability", "release-notes", "faq")
CATEGORIES = ("shoes", "outdoor", "kitchen", "electronics", "toys", "garden", "books")
SEARCHES = ("red running shoes", "usb c cable", "standing desk", "rain jacket women",
            "coffee grinder", "kids bike 16 inch", "noise cancelling headphones", "yoga mat",
            "cast iron pan", "gift card", "phone case", "winter boots", "led desk lamp")
SQL_WORD_SEARCHES = (
    "select a plan", "union station parking", "drop shipping", "insert coin arcade machine",
    "delete my account", "update billing address", "order by price", "where to buy",
    "table and chairs", "sleep mask", "cat toys", "ping pong table", "bash birthday party",
    "javascript: the good parts", "alert bracelet", "script writing course", "rock 'n' roll",
    "O'Reilly books", "men's shoes", "women's day gifts", "Tom & Jerry dvd", "100% cotton",
    "<3 gift ideas", "C:\\Program Files", "1 or 2 seat sofa", "exec chair", "having fun toys",
    "sql for dummies", "cmd key replacement", "etc shoes", "null pointer t-shirt",
)
NAMES = ("O'Brien", "D'Angelo", "O'Connor", "N'Dour", "Al-Hassan", "Zoë Müller",
         "Mary-Jane Watson", "Smith & Sons Ltd", "José García", "L'Oréal Paris", "D'Arcy Lane")
FORUM_SNIPPETS = (
    "SELECT * FROM orders WHERE customer_id = 42 ORDER BY created_at DESC;",
    "How do I escape quotes? WHERE name = 'O''Brien' -- fails on Postgres",
    "Is UNION ALL faster than UNION SELECT with DISTINCT here?",
    '<script src="/static/widget.js"></script> loads twice, why?',
    "document.cookie is empty in Safari when SameSite=None",
    '<button onclick="toggle()">Menu</button> does not fire on iOS',
    "cat /etc/hosts | grep localhost shows nothing inside the container",
    "curl http://localhost:8080/health returns 503 after deploy",
    "ls -la ../../logs gives permission denied",
    "DROP TABLE IF EXISTS tmp_users; then CREATE TABLE tmp_users AS SELECT id FROM users;",
    "$(document).ready(function(){ $('#cart').load('/cart'); });",
    "import os; os.system('ls') works but subprocess.run(['ls']) does not",
    "${JAVA_HOME}/bin/java -jar app.jar fails with UnsupportedClassVersionError",
    "Why does <img src=x onerror=...> show up in my CSP report?",
    "My regex for ../ path segments: r'(\\.\\./)+' matches too much",
    "Use WHERE id IN (1, 2, 3) instead of OR id = 1 OR id = 2",
    "SLEEP(5) in MySQL blocks the connection; use a job queue instead",
    "eval(input) is dangerous; use ast.literal_eval",
)
PROBE_TARGETS = (  # the files and consoles scanners ask for on every site
    "/.env", "/.git/config", "/.git/HEAD", "/.svn/entries", "/.DS_Store", "/.htaccess",
    "/.aws/credentials", "/wp-login.php", "/wp-admin/", "/wp-config.php.bak", "/xmlrpc.php",
    "/phpmyadmin/", "/pma/", "/myadmin/", "/adminer.php", "/backup.zip", "/backup.sql",
    "/db.sql", "/site.tar.gz", "/dump.sql", "/config.php", "/config.php.old", "/index.php.bak",
    "/cgi-bin/test.cgi", "/server-status", "/actuator/env", "/manager/html", "/jenkins/",
    "/solr/admin/", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/HNAP1/",
    "/boaform/admin/formLogin", "/owa/auth/logon.aspx", "/telescope/requests", "/_profiler/",
    "/elmah.axd", "/WEB-INF/web.xml", "/shell.php", "/info.php", "/phpinfo.php", "/test.php",
    "/admin.php", "/setup.php", "/install.php", "/.vscode/sftp.json", "/docker-compose.yml",
    "/.npmrc", "/id_rsa", "/private.key",
)
PROBE_PATHS = (  # and what they look at besides, some of which exist
    *PROBE_TARGETS, "/.well-known/security.txt", "/robots.txt", "/sitemap.xml", "/admin/",
    "/administrator/", "/old/", "/backup/", "/dev/", "/staging/", "/api/v2/",
    "/api/swagger.json", "/console", "/debug/default/view", "/config.json",
)
WORDLIST = ("admin", "backup", "old", "test", "dev", "tmp", "uploads", "files", "data", "api",
            "private", "secret", "db", "sql", "logs", "conf", "install", "portal", "beta")
UNUSUAL_METHODS = ("TRACE", "TRACK", "PROPFIND", "DEBUG", "OPTIONS", "MKCOL", "SEARCH")

# ------------------------------------------------------------------------------ corpus


@cache
def corpus(name: str) -> tuple[str, ...]:
    """The vendored payloads of one class (``sqli``, ``xss``, ``traversal``, ``cmdi``,
    ``ssrf``, ``log4shell``, ``scanner_paths``)."""
    text = resources.files(__package__).joinpath("data", f"waf_{name}.txt").read_text("utf-8")
    return tuple(line for line in text.split("\n") if line.strip())


def _pick(rng: np.random.Generator, items: tuple[str, ...]) -> str:
    return items[int(rng.integers(len(items)))]


def _ip(rng: np.random.Generator) -> str:
    a = int(rng.choice([23, 31, 45, 51, 62, 77, 81, 89, 91, 103, 109, 141, 176, 185, 188, 193,
                        203, 212]))
    return f"{a}.{int(rng.integers(256))}.{int(rng.integers(256))}.{int(rng.integers(1, 255))}"


def _mixed_case(rng: np.random.Generator, text: str) -> str:
    flips = rng.random(len(text)) < 0.5
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))


def encode_payload(rng: np.random.Generator, payload: str, family: str) -> str:
    """A payload as it arrives in a query value: URL-encoded (as published when the corpus
    already encodes it), sometimes with mixed case, SQL comments for spaces, '+' for spaces or
    encoded twice."""
    style = float(rng.random())
    if family == "sqli" and style < 0.2:
        payload = payload.replace(" ", "/**/")
    elif style < 0.35:
        payload = _mixed_case(rng, payload)
    if "%" in payload and style >= 0.2:
        return payload
    if style > 0.85:
        return quote(quote(payload, safe=""), safe="")
    if style > 0.6:
        return quote_plus(payload, safe="")
    return quote(payload, safe="")


def hidden_payload(rng: np.random.Generator, payload: str) -> str:
    """A payload hidden by an encoding the detector does not decode (the drift)."""
    style = float(rng.random())
    if style < 0.4:
        return "".join(c if c.isalnum() else f"%u{ord(c):04x}" for c in payload)
    if style < 0.7:
        return quote(base64.b64encode(payload.encode()).decode(), safe="")
    escaped = "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in payload)
    return quote(f'{{"q":"{escaped}"}}', safe="")  # a JSON body, every symbol escaped


# ------------------------------------------------------------------------------ one session


class _Client:
    """Builds one client's requests, keeping its clock."""

    def __init__(self, rng: np.random.Generator, start_ts: float, agent: str) -> None:
        self.rng = rng
        self.ip = _ip(rng)
        self.agent = agent
        self.t = start_ts + float(rng.uniform(0, SPAN_S))
        self.requests: Session = []

    def wait(self, mean_s: float) -> None:
        self.t += float(self.rng.exponential(mean_s))

    def hit(self, path: str, status: int = 200, *, method: str = "GET", query: str = "",
            agent: str | None = None, size: int | None = None) -> None:
        if size is None:
            size = 0 if status in {204, 304} else int(self.rng.lognormal(8.5, 1.0))
        self.requests.append({
            "ts": round(self.t, 3), "client": self.ip, "method": method, "path": path,
            "query": query, "status": status, "user_agent": agent or self.agent, "bytes": size})

    def page(self, path: str, query: str = "", status: int = 200) -> None:
        """A page view with its assets loaded within half a second."""
        self.hit(path, status, query=query)
        for _ in range(int(self.rng.integers(0, 6))):
            self.t += float(self.rng.uniform(0.01, 0.1))
            asset = _pick(self.rng, ("/static/js/app.3f9a1c.js", "/static/css/main.8b2e.css",
                                     f"/img/p/{int(self.rng.integers(1, 5000))}.jpg",
                                     "/static/fonts/inter.woff2", "/favicon.ico"))
            missing = self.rng.random() < 0.01
            self.hit(asset, 404 if missing else int(self.rng.choice([200, 304])))

    def browse(self, views: int) -> None:
        for _ in range(views):
            self.wait(12.0)
            roll = float(self.rng.random())
            if roll < 0.3:
                self.page(f"/products/{int(self.rng.integers(1, 5000))}")
            elif roll < 0.45:
                self.page(f"/category/{_pick(self.rng, CATEGORIES)}",
                          query=_pick(self.rng, ("", "sort=price&order=asc", "page=2")))
            elif roll < 0.6:
                self.page("/search", query="q=" + quote_plus(_pick(self.rng, SEARCHES)))
            elif roll < 0.7:
                self.page(f"/blog/{_pick(self.rng, SLUGS)}")
            elif roll < 0.8:
                self.hit("/api/v1/cart/items", 201, method="POST",
                         query=f"product_id={int(self.rng.integers(1, 5000))}&qty=1")
            else:
                self.page(_pick(self.rng, PAGES))


def _count(rng: np.random.Generator, median: float, low: int, high: int) -> int:
    """A heavy-tailed session length: most attack sessions are short, a few very long."""
    return int(np.clip(round(median * float(rng.lognormal(0.0, 0.9))), low, high))


# ------------------------------------------------------------------------------ benign kinds

def _browser(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    c.browse(int(rng.integers(2, 25)))
    return c.requests


def _sql_word_search(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    c.browse(int(rng.integers(1, 6)))
    for _ in range(int(rng.integers(1, 5))):
        c.wait(8.0)
        c.page("/search", query="q=" + quote_plus(_pick(rng, SQL_WORD_SEARCHES)))
        if rng.random() < 0.3:  # a result that was sold out and removed
            c.wait(5.0)
            c.page(f"/products/{int(rng.integers(1, 5000))}", status=404)
        c.browse(int(rng.integers(0, 3)))
    return c.requests


def _apostrophe_names(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    c.browse(int(rng.integers(1, 6)))
    c.wait(20.0)
    c.page("/checkout")
    for attempt in range(int(rng.integers(1, 3))):
        c.wait(30.0)
        name, street = _pick(rng, NAMES), _pick(rng, NAMES).split()[0]
        body = (f"name={quote_plus(name)}&address={quote_plus(f'12 {street} St')}"
                f"&city=Dublin&email={quote_plus(name.split()[0].lower())}%40example.com")
        c.hit("/checkout", 422 if attempt == 0 and rng.random() < 0.3 else 302,
              method="POST", query=body)
    return c.requests


def _forum_posts(rng: np.random.Generator, t0: float, posts: tuple[int, int] = (1, 3)) -> Session:
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    c.page("/forum")
    for _ in range(int(rng.integers(*posts))):
        c.wait(25.0)
        c.page(f"/forum/t/{int(rng.integers(1, 90000))}")
        c.wait(90.0)
        text = _pick(rng, FORUM_SNIPPETS)
        body = f"title={quote_plus('Question about ' + _pick(rng, SLUGS))}&body={quote_plus(text)}"
        c.hit("/forum/posts", 302, method="POST", query=body)
        c.page(f"/forum/t/{int(rng.integers(1, 90000))}")
        if rng.random() < 0.3:  # a dead link in a thread, an edit after the window closed
            c.wait(10.0)
            c.hit(_pick(rng, ("/forum/t/1", "/forum/posts/edit")), int(rng.choice([404, 403])))
    return c.requests


def _health_check(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, MONITOR_AGENTS))
    period = float(rng.choice([5.0, 10.0, 15.0]))
    path = _pick(rng, ("/health", "/healthz", "/health/ready", "/status"))
    n = int(rng.integers(20, 120))
    outage = int(rng.integers(0, n)) if rng.random() < 0.4 else n
    outage_len = int(rng.integers(2, 12))
    for i in range(n):
        c.t += period + float(rng.normal(0, 0.2))
        status = 503 if outage <= i < outage + outage_len else 200
        c.hit(path, status, size=int(rng.integers(2, 80)))
    return c.requests


def _spa(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    c.page("/app")
    for _ in range(int(rng.integers(2, 8))):
        c.wait(15.0)
        for _ in range(int(rng.integers(8, 30))):
            c.t += float(rng.uniform(0.005, 0.06))
            roll = float(rng.random())
            if roll < 0.25:
                c.hit(f"/img/avatars/{int(rng.integers(1, 10**6))}.png",
                      404 if rng.random() < 0.5 else 200)
            elif roll < 0.3:
                c.hit("/api/v1/me", 401)
                c.hit("/api/v1/auth/refresh", 200, method="POST")
            else:
                c.hit(_pick(rng, (f"/api/v1/items/{int(rng.integers(1, 5000))}",
                                  "/api/v1/cart", "/api/v1/notifications", "/api/v1/me",
                                  "/api/v1/recommendations")))
    return c.requests


def _crawler(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, CRAWLER_AGENTS))
    c.hit("/robots.txt")
    c.hit("/sitemap.xml")
    stale = float(rng.uniform(0.02, 0.2))
    for _ in range(int(rng.integers(20, 150))):
        c.wait(3.0)
        roll = float(rng.random())
        if roll < 0.5:
            path = f"/products/{int(rng.integers(1, 20000))}"
        elif roll < 0.7:
            path = f"/blog/{_pick(rng, SLUGS)}-{int(rng.integers(2015, 2027))}"
        elif roll < 0.85:
            path = f"/category/{_pick(rng, CATEGORIES)}"
        else:
            path = _pick(rng, PAGES)
        c.hit(path, 404 if rng.random() < stale else int(rng.choice([200, 200, 200, 301])))
    return c.requests


def _mobile_retry(rng: np.random.Generator, t0: float, *, with_400s: bool = False) -> Session:
    c = _Client(rng, t0, _pick(rng, MOBILE_AGENTS))
    for _ in range(int(rng.integers(1, 4))):
        c.wait(20.0)
        c.hit("/api/v1/me")
        c.hit("/api/v1/feed", query="since=1767225600&limit=50")
        delay = 1.0
        for _ in range(int(rng.integers(2, 9))):
            c.t += delay + float(rng.uniform(0, 0.5))
            delay *= 2
            status = 400 if with_400s and rng.random() < 0.4 else int(rng.choice([502, 503, 504]))
            c.hit("/api/v1/sync", status, method="POST", query="device=ios&batch=17")
        c.t += delay
        c.hit("/api/v1/sync", 200, method="POST", query="device=ios&batch=17")
    return c.requests


def _forgot_password(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    name = quote_plus(_pick(rng, NAMES).split()[0].lower())
    user = f"username={name}%40example.com"
    typo = f"username={name}%40exmaple.com" if rng.random() < 0.3 else user
    c.page("/login")
    for attempt in range(int(rng.integers(2, 5))):
        c.wait(10.0)
        c.hit("/login", 401, method="POST",
              query=f"{typo if attempt == 0 else user}&password=hunter{rng.integers(99)}")
    c.wait(20.0)
    c.page("/password/reset")
    c.hit("/password/reset", 302, method="POST", query=user)
    c.wait(120.0)
    c.hit("/login", 302, method="POST", query=f"{user}&password=correct-horse")
    c.browse(int(rng.integers(1, 6)))
    return c.requests


def _dead_link(rng: np.random.Generator, t0: float) -> Session:
    """A visitor from an old link: a 404, then maybe the home page or a search."""
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    c.page(_pick(rng, (f"/products/{int(rng.integers(1, 20000))}", f"/blog/{_pick(rng, SLUGS)}",
                       "/promo/black-friday-2024", "/old-shop/index.html")), status=404)
    if rng.random() < 0.6:
        c.wait(5.0)
        c.page(_pick(rng, ("/", "/search")))
    return c.requests


def _security_course_forum(rng: np.random.Generator, t0: float) -> Session:
    """A web-security course's students: many posts quoting attack strings they study."""
    return _forum_posts(rng, t0, (3, 8))


def _buggy_mobile_release(rng: np.random.Generator, t0: float) -> Session:
    """A release whose sync payload the server rejects (400) between its 5xx retries."""
    return _mobile_retry(rng, t0, with_400s=True)


def _api_client(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, SCRIPT_AGENTS))
    for i in range(int(rng.integers(10, 60))):
        c.t += float(rng.uniform(20, 60))
        status = 429 if rng.random() < 0.15 else 200
        c.hit("/api/v1/orders", status, query=f"since={1767225600 + 60 * i}&page=1")
    return c.requests


def _link_checker(rng: np.random.Generator, t0: float) -> Session:
    """A QA team's link checker after a site migration: many pages, many of them gone."""
    c = _Client(rng, t0, LINKCHECK_AGENT)
    broken = float(rng.uniform(0.2, 0.5))
    for _ in range(int(rng.integers(40, 200))):
        c.t += float(rng.uniform(0.05, 0.4))
        path = _pick(rng, (f"/products/{int(rng.integers(1, 20000))}",
                           f"/blog/{_pick(rng, SLUGS)}", f"/help/{_pick(rng, SLUGS)}",
                           f"/docs/{_pick(rng, WORDLIST)}/{_pick(rng, SLUGS)}",
                           f"/category/{_pick(rng, CATEGORIES)}", _pick(rng, PAGES)))
        c.hit(path, 404 if rng.random() < broken else 200,
              method="HEAD" if rng.random() < 0.5 else "GET")
    return c.requests


def _office_nat(rng: np.random.Generator, t0: float) -> Session:
    """An office behind one address: several people at once, each with a browser; some sign
    in, with their own accounts and their own typos (several usernames failing from one
    address, as in credential stuffing)."""
    people = [_Client(rng, t0, _pick(rng, BROWSER_AGENTS))
              for _ in range(int(rng.integers(3, 12)))]
    for i, person in enumerate(people):
        person.ip = people[0].ip
        person.browse(int(rng.integers(1, 10)))
        if rng.random() < 0.4:
            user = f"username=employee{i}%40acme.example"
            person.page("/login")
            for _ in range(int(rng.choice([0, 1, 1, 2]))):
                person.wait(8.0)
                person.hit("/login", 401, method="POST", query=f"{user}&password=typo")
            person.wait(8.0)
            person.hit("/login", 302, method="POST", query=f"{user}&password=right")
        if rng.random() < 0.2:
            person.page("/search", query="q=" + quote_plus(_pick(rng, SQL_WORD_SEARCHES)))
        person.browse(int(rng.integers(1, 6)))
    return [r for person in people for r in person.requests]


# ------------------------------------------------------------------------------ attacks

_INJECTION_TARGETS = {  # family -> (method, path, parameter, extra)
    "sqli": (("GET", "/products", "id", "sort=price"), ("GET", "/search", "q", ""),
             ("POST", "/login", "username", "password=x"), ("GET", "/api/v1/items", "filter", "")),
    "xss": (("GET", "/search", "q", ""), ("POST", "/forum/posts", "body", "title=hi"),
            ("GET", "/contact", "name", "")),
    "cmdi": (("GET", "/api/v1/tools/ping", "host", ""), ("POST", "/api/v1/export", "filename",
                                                          "format=csv")),
    "ssrf": (("GET", "/api/v1/fetch", "url", ""), ("POST", "/api/v1/webhooks", "callback",
                                                    "event=order.created"),
             ("GET", "/image/proxy", "src", "w=200")),
    "log4shell": (("GET", "/search", "q", ""), ("GET", "/", "lang", "")),
}
_INJECTION_STATUS = {"sqli": ([200, 500, 403, 400], [0.55, 0.25, 0.1, 0.1]),
                     "xss": ([200, 403, 400], [0.7, 0.2, 0.1]),
                     "cmdi": ([200, 500, 400, 403], [0.5, 0.2, 0.2, 0.1]),
                     "ssrf": ([200, 400, 502, 504], [0.4, 0.3, 0.2, 0.1]),
                     "log4shell": ([200, 400], [0.85, 0.15])}


def _injection(rng: np.random.Generator, t0: float, family: str) -> Session:
    scanner = rng.random() < 0.3
    agent = _pick(rng, SCANNER_AGENTS[1:2] if scanner else BROWSER_AGENTS + SCRIPT_AGENTS)
    c = _Client(rng, t0, agent)
    if rng.random() < 0.5:
        c.browse(int(rng.integers(1, 5)))
    targets = _INJECTION_TARGETS[family]
    statuses, weights = _INJECTION_STATUS[family]
    payloads = corpus(family)
    gap = float(rng.choice([0.3, 1.0, 4.0]))
    for _ in range(_count(rng, 14, 3, 150)):
        c.wait(gap)
        method, path, param, extra = targets[int(rng.integers(len(targets)))]
        if rng.random() < 0.15:  # the untouched request sqlmap and friends compare against
            c.hit(path, 200, method=method, query=f"{param}=1" + (f"&{extra}" if extra else ""))
            continue
        payload = _pick(rng, payloads)
        value = encode_payload(rng, payload, family)
        query = f"{param}={value}" + (f"&{extra}" if extra else "")
        status = int(rng.choice(statuses, p=weights))
        hit_agent = None
        if family == "log4shell" and rng.random() < 0.6:  # the header is the classic vector
            hit_agent, query = payload, f"{param}=1"
        c.hit(path, status, method=method, query=query, agent=hit_agent)
    return c.requests


def _scanner(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, SCANNER_AGENTS if rng.random() < 0.5
                                else BROWSER_AGENTS + SCRIPT_AGENTS))
    known = corpus("scanner_paths") + PROBE_PATHS
    gap = float(rng.choice([0.05, 0.2, 1.0]))
    soft_404 = rng.random() < 0.3  # a single-page app answers 200 with its shell for any path
    for _ in range(_count(rng, 25, 5, 400)):
        c.wait(gap)
        roll = float(rng.random())
        if roll < 0.5:
            path = _pick(rng, known)
        elif roll < 0.85:
            path = "/" + "/".join(_pick(rng, WORDLIST) for _ in range(int(rng.integers(1, 3))))
            path += _pick(rng, ("", "/", ".php", ".bak", ".zip", ".old", ".txt"))
        else:
            path = _pick(rng, PAGES)
        method = _pick(rng, UNUSUAL_METHODS) if rng.random() < 0.04 else \
            ("HEAD" if rng.random() < 0.2 else "GET")
        exists = path in PAGES or path in {"/robots.txt", "/sitemap.xml"}
        if exists or (soft_404 and rng.random() < 0.9):
            status = 200
        else:
            status = int(rng.choice([404, 404, 404, 404, 403, 301, 405]))
        c.hit(path, status, method=method)
    return c.requests


def _opportunistic_probe(rng: np.random.Generator, t0: float) -> Session:
    """The background noise of the internet: a bot asks for one to four well-known files."""
    c = _Client(rng, t0, _pick(rng, SCRIPT_AGENTS + BROWSER_AGENTS + SCANNER_AGENTS[-1:]))
    for _ in range(int(rng.integers(1, 5))):
        c.wait(0.5)
        c.hit(_pick(rng, PROBE_TARGETS), int(rng.choice([404, 404, 404, 403, 200])))
    return c.requests


def _credential_stuffing(rng: np.random.Generator, t0: float) -> Session:
    rotate = rng.random() < 0.3
    c = _Client(rng, t0, _pick(rng, SCRIPT_AGENTS + BROWSER_AGENTS))
    path = _pick(rng, ("/login", "/api/v1/auth/login", "/account/signin"))
    gap = float(rng.choice([0.3, 1.0, 3.0]))
    for _ in range(_count(rng, 30, 8, 300)):
        c.wait(gap)
        if rng.random() < 0.2:
            c.hit(path)  # the form, for its CSRF token
        user = f"{_pick(rng, SLUGS).split('-')[0]}{int(rng.integers(10, 99999))}%40" + \
            _pick(rng, ("gmail.com", "yahoo.com", "outlook.com", "example.org"))
        status = 302 if rng.random() < 0.02 else 401
        c.hit(path, status, method="POST", query=f"username={user}&password=" +
              quote_plus(f"Summer{int(rng.integers(2000, 2026))}!"),
              agent=_pick(rng, BROWSER_AGENTS) if rotate else None)
    return c.requests


def _path_traversal(rng: np.random.Generator, t0: float) -> Session:
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS + SCRIPT_AGENTS + SCANNER_AGENTS[:1]))
    if rng.random() < 0.4:
        c.browse(int(rng.integers(1, 4)))
    payloads = corpus("traversal")
    gap = float(rng.choice([0.2, 1.0, 3.0]))
    for _ in range(_count(rng, 14, 4, 120)):
        c.wait(gap)
        payload = _pick(rng, payloads)
        status = int(rng.choice([400, 404, 403, 200, 500], p=[0.3, 0.3, 0.15, 0.15, 0.1]))
        if rng.random() < 0.5:
            c.hit(_pick(rng, ("/download", "/api/v1/files", "/view")), status,
                  query="file=" + encode_payload(rng, payload, "traversal"))
        else:
            sep = "" if payload.startswith("/") else "/"
            c.hit(f"/static{sep}{payload}", status)
    return c.requests


# ------------------------------------------------------------------------------ drifted attacks

def _hidden_injection(rng: np.random.Generator, t0: float) -> Session:
    """Few, quiet requests with payloads under encodings the detector does not decode."""
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    c.browse(int(rng.integers(1, 6)))
    family = _pick(rng, ("sqli", "xss", "cmdi", "ssrf"))
    method, path, param, extra = _INJECTION_TARGETS[family][0]
    for _ in range(int(rng.integers(3, 15))):
        c.wait(20.0)
        value = hidden_payload(rng, _pick(rng, corpus(family)))
        c.hit(path, int(rng.choice([200, 200, 200, 500])), method=method,
              query=f"{param}={value}" + (f"&{extra}" if extra else ""))
        c.browse(int(rng.integers(0, 2)))
    return c.requests


def _low_and_slow_stuffing(rng: np.random.Generator, t0: float) -> Session:
    """One address of a botnet: a few logins, minutes apart, each after loading the page."""
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    for _ in range(int(rng.integers(1, 5))):
        c.wait(240.0)
        c.page("/login")
        c.t += float(rng.uniform(2, 8))
        user = f"{_pick(rng, SLUGS).split('-')[0]}{int(rng.integers(10, 99999))}%40gmail.com"
        c.hit("/login", 302 if rng.random() < 0.05 else 401, method="POST",
              query=f"username={user}&password=Winter2025%21")
    return c.requests


def _stealth_scanner(rng: np.random.Generator, t0: float) -> Session:
    """One address of a distributed scan: a browser's user agent, real pages around one to
    three probes a few minutes apart."""
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    for _ in range(int(rng.integers(1, 4))):
        c.browse(int(rng.integers(1, 3)))
        c.wait(120.0)
        c.hit(_pick(rng, PROBE_PATHS + corpus("scanner_paths")), 404)
    c.browse(int(rng.integers(0, 3)))
    return c.requests


def _throttled_injection(rng: np.random.Generator, t0: float) -> Session:
    """Four payloads, half a minute apart, among the pages of a browser session."""
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    c.browse(int(rng.integers(1, 5)))
    family = _pick(rng, ("sqli", "xss", "cmdi", "ssrf"))
    method, path, param, extra = _INJECTION_TARGETS[family][0]
    for _ in range(4):
        c.wait(30.0)
        value = encode_payload(rng, _pick(rng, corpus(family)), family)
        c.hit(path, int(rng.choice([200, 200, 500])), method=method,
              query=f"{param}={value}" + (f"&{extra}" if extra else ""))
        c.browse(int(rng.integers(0, 2)))
    return c.requests


def _throttled_scanner(rng: np.random.Generator, t0: float) -> Session:
    """One address of a scan that knows the limits: two probes, each after real pages."""
    c = _Client(rng, t0, _pick(rng, BROWSER_AGENTS))
    for _ in range(2):
        c.browse(int(rng.integers(1, 3)))
        c.wait(20.0)
        c.hit(_pick(rng, PROBE_PATHS), 404)
    return c.requests


# ------------------------------------------------------------------------------ the mix

Maker = Callable[[np.random.Generator, float], Session]


@dataclass(frozen=True)
class SessionKind:
    """One kind of session in the mix: its name, share, maker and truth."""

    name: str
    weight: float
    make: Maker
    malicious: bool

    def scaled(self, factor: float) -> SessionKind:
        return SessionKind(self.name, self.weight * factor, self.make, self.malicious)


def _benign(name: str, weight: float, make: Maker) -> SessionKind:
    return SessionKind(name, weight, make, malicious=False)


def _attack(name: str, weight: float, make: Maker) -> SessionKind:
    return SessionKind(name, weight, make, malicious=True)


def _injection_of(family: str) -> Maker:
    return lambda rng, t0: _injection(rng, t0, family)


BENIGN = (
    _benign("browser", 0.28, _browser),
    _benign("lookalike:sql-words-search", 0.06, _sql_word_search),
    _benign("lookalike:apostrophe-names", 0.04, _apostrophe_names),
    _benign("lookalike:forum-code", 0.05, _forum_posts),
    _benign("lookalike:health-check", 0.05, _health_check),
    _benign("lookalike:spa-burst-404", 0.05, _spa),
    _benign("lookalike:crawler", 0.05, _crawler),
    _benign("lookalike:mobile-retry", 0.04, _mobile_retry),
    _benign("lookalike:forgot-password", 0.03, _forgot_password),
    _benign("lookalike:api-client-429", 0.03, _api_client),
    _benign("lookalike:office-nat", 0.02, _office_nat),
    _benign("lookalike:dead-link", 0.03, _dead_link),
)
ATTACKS = (
    _attack("scanner", 0.06, _scanner),
    _attack("opportunistic-probe", 0.03, _opportunistic_probe),
    _attack("injection:sqli", 0.03, _injection_of("sqli")),
    _attack("injection:xss", 0.02, _injection_of("xss")),
    _attack("injection:cmdi", 0.02, _injection_of("cmdi")),
    _attack("injection:ssrf", 0.02, _injection_of("ssrf")),
    _attack("injection:log4shell", 0.01, _injection_of("log4shell")),
    _attack("credential-stuffing", 0.06, _credential_stuffing),
    _attack("path-traversal", 0.06, _path_traversal),
)
MIXES: dict[str | None, tuple[SessionKind, ...]] = {
    None: BENIGN + ATTACKS,
    # attackers adapt: 70 % of the attack share moves to styles the features miss more often
    "new-attack-style": (
        *BENIGN,
        *(k.scaled(0.3) for k in ATTACKS),
        _attack("obfuscated-injection", 0.07, _hidden_injection),
        _attack("low-and-slow-stuffing", 0.07, _low_and_slow_stuffing),
        _attack("stealth-scanner", 0.07, _stealth_scanner),
    ),
    # the benign side shifts: 40 % of it moves to noisier look-alikes
    "lookalike-surge": (
        *(k.scaled(0.6) for k in BENIGN),
        _benign("lookalike:security-course-forum", 0.12, _security_course_forum),
        _benign("lookalike:link-checker", 0.08, _link_checker),
        _benign("lookalike:buggy-mobile-release", 0.08, _buggy_mobile_release),
        *ATTACKS,
    ),
    # attackers stay under the threshold: 70 % of the attack share moves to throttled styles
    "throttled-attacks": (
        *BENIGN,
        *(k.scaled(0.3) for k in ATTACKS),
        _attack("throttled-injection", 0.11, _throttled_injection),
        _attack("throttled-scanner", 0.107, _throttled_scanner),
    ),
}


def mix(drift: str | None = None) -> tuple[SessionKind, ...]:
    """The kinds of session ``generate`` draws from (for ``drift``), with their shares."""
    if drift not in MIXES:
        raise ValueError(f"drift: expected one of {', '.join(DRIFTS)} or None, got {drift!r}")
    return MIXES[drift]


def generate(rng: np.random.Generator, n: int, *, drift: str | None = None,
             start_ts: float = DEFAULT_START_TS) -> list[Labeled[Session]]:
    """``n`` labeled client sessions (requests in time order), starting within an hour of
    ``start_ts``; the same generator state gives the same sessions."""
    if n < 0:
        raise ValueError(f"n: expected a count >= 0, got {n}")
    kinds = mix(drift)
    weights = np.array([k.weight for k in kinds])
    chosen = rng.choice(len(kinds), size=n, p=weights / weights.sum())
    out = []
    for i in chosen:
        kind = kinds[int(i)]
        session = sorted(kind.make(rng, start_ts), key=lambda r: r["ts"])
        out.append(Labeled(input=session, label=kind.malicious, kind=kind.name))
    return out


# ------------------------------------------------------------------------------ the baseline

NAIVE_KEYWORDS = ("select", "union", "insert", "drop", "delete", "update", "<script", "alert(",
                  "../", "..\\", "/etc/passwd", "' or", "or 1=1", "jndi", "cmd", "exec", "sleep(",
                  "wget", "/bin/")


def naive_score(requests: Session) -> float:
    """Error rate (4xx and 5xx) plus 0.5 when any request holds a keyword after one round of
    URL-decoding, capped at 1."""
    if not requests:
        return 0.0
    errors = sum(int(r["status"]) >= 400 for r in requests) / len(requests)
    text = (unquote_plus(f"{r['path']} {r['query']} {r['user_agent']}").lower()
            for r in requests)
    keyword = any(k in t for t in text for k in NAIVE_KEYWORDS)
    return min(1.0, errors + (0.5 if keyword else 0.0))
