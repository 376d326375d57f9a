"""`mlops flower`: no URL that shows data answers without the credentials.

Checked against a real worker consuming the ingest queue, `mlops flower` as a subprocess and a
private redis-server (nothing reaches the session's broker), with plain HTTP requests for every
route of Flower and a headless Chromium that logs in. The browser's screenshots are kept in
``$MLOPS_TEST_ARTIFACTS`` (default ``<repo>/.artifacts/``).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from mlops_tasks.client import MonitoringClient
from mlops_tasks.flower_auth import Credentials, is_authorized
from mlops_tasks.queues import TASK_INGEST_LABELS, TASK_INGEST_PREDICTIONS
from mlops_tasks.registry import Registry
from mlops_tasks.settings import Settings

from .conftest import wait_for
from .processes import MlopsProcess, WorkerProcess, project_env
from .redis_server import RedisServer, free_port
from .test_registry import register_catalogue

USER, PASSWORD = "ops", "fl0wer-pw:7"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
WRONG = "Basic " + base64.b64encode(f"{USER}:not-it".encode()).decode()
MODEL = "waf-behavioral"
INGEST_TASKS = (TASK_INGEST_PREDICTIONS, TASK_INGEST_LABELS)
CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
DATATABLE_QUERY = ("draw=1&start=0&length=10&order[0][column]=0&columns[0][data]=name"
                   "&order[0][dir]=asc")


class FlowerProcess(MlopsProcess):
    command = "flower"


@dataclass(frozen=True)
class Stack:
    base_url: str
    worker_name: str
    task_id: str
    flower: FlowerProcess


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    headers: Any


def request(url: str, *, method: str = "GET", auth: str | None = AUTH) -> Reply:
    headers = {"Authorization": auth} if auth else {}
    data = b"" if method == "POST" else None
    req = urllib.request.Request(url, method=method, headers=headers, data=data)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - test server
            return Reply(response.status, response.read().decode(errors="replace"),
                         response.headers)
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode(errors="replace"), exc.headers)


def _answering(url: str) -> Reply | None:
    try:
        return request(url)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Where screenshots go; read before the per-test fixture clears the MLOPS_ variables."""
    folder = Path(os.environ.get("MLOPS_TEST_ARTIFACTS") or REPO / ".artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A private Redis with the catalogue registered, an events-pool worker, `mlops flower`,
    and ingest tasks of both kinds already seen by Flower."""
    folder = tmp_path_factory.mktemp("flower")
    server = RedisServer(folder / "redis").start()
    settings = Settings.from_env({})
    register_catalogue(Registry(redis.Redis.from_url(server.url, decode_responses=True),
                                settings))
    worker = WorkerProcess(server.url, folder, "--pool", "events", "--concurrency", "1",
                           MLOPS_DATA_DIR=str(folder / "worker-data"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    flower = FlowerProcess(server.url, folder, "--port", str(port),
                           MLOPS_FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}",
                           MLOPS_DATA_DIR=str(folder / "flower-data"))
    client = None
    try:
        worker.start(timeout=120)
        flower.spawn()

        def worker_listed() -> str | None:
            assert flower.proc is not None and flower.proc.poll() is None, flower.log()[-3000:]
            reply = _answering(f"{base_url}/api/workers?refresh=1")
            if reply is None or reply.status != 200:
                return None
            return next((name for name in json.loads(reply.body)
                         if name.startswith("events@")), None)

        worker_name = wait_for(worker_listed, timeout=120, interval=0.5,
                               what="Flower to list the worker")
        client = MonitoringClient(server.url, redis_url=server.url, flush_interval_ms=20,
                                  settings=settings)

        def ingest_tasks_seen() -> str | None:
            # Flower sees only the tasks that run after its event receiver is connected: send
            # a few more events until both kinds of ingest task have been seen succeeding
            ids = [client.record_prediction(MODEL, score) for score in (0.2, 0.8, 0.9)]
            client.record_ground_truth(MODEL, ids[0], actual=False)
            client.flush(30)
            reply = _answering(f"{base_url}/api/tasks?state=SUCCESS")
            if reply is None or reply.status != 200:
                return None
            tasks = json.loads(reply.body)
            names = {task["name"] for task in tasks.values()}
            if not set(INGEST_TASKS) <= names:
                return None
            return next(tid for tid, task in tasks.items()
                        if task["name"] == TASK_INGEST_PREDICTIONS)

        task_id = wait_for(ingest_tasks_seen, timeout=120, interval=1,
                           what="Flower to see our ingest tasks succeed")
        yield Stack(base_url, worker_name, task_id, flower)
    finally:
        if client is not None:
            client.close()
        flower.stop()
        worker.stop()
        server.stop()


def data_routes(stack: Stack) -> list[str]:
    """Every route of Flower that shows data (flower/urls.py), readable with GET."""
    return ["/", "/workers", f"/worker/{stack.worker_name}", "/tasks",
            f"/task/{stack.task_id}", f"/tasks/datatable?{DATATABLE_QUERY}", "/broker",
            "/metrics", "/api/workers", "/api/tasks", "/api/task/types",
            "/api/queues/length", f"/api/task/info/{stack.task_id}"]


@pytest.mark.slow
def test_anonymous_requests_get_401_on_every_data_route(stack: Stack) -> None:
    """Given Flower with the worker and our ingest tasks, when anyone asks without credentials
    or with a wrong password for any route that shows data, then the answer is 401 with a
    basic-auth challenge and holds neither the worker's nor a task's name."""
    routes = [*data_routes(stack), f"/api/task/result/{stack.task_id}", "/login", "/logout",
              "/no-such-page"]
    for route in routes:
        for auth in (None, WRONG):
            reply = request(stack.base_url + route, auth=auth)
            assert reply.status == 401, (route, auth, reply.status, reply.body[:300])
            assert reply.headers["WWW-Authenticate"] == 'Basic realm="flower"', route
            for secret in (stack.worker_name, stack.task_id, *INGEST_TASKS):
                assert secret not in reply.body, (route, secret)


@pytest.mark.slow
def test_anonymous_writes_and_other_methods_get_401(stack: Stack) -> None:
    """Given Flower, when anyone POSTs to the API or sends HEAD or OPTIONS without credentials,
    then the answer is 401 (a revoke of an unknown task id: harmless if it got through)."""
    for method, route in [("POST", f"/api/task/revoke/{uuid.uuid4()}"),
                          ("POST", f"/tasks/datatable?{DATATABLE_QUERY}"),
                          ("HEAD", "/metrics"), ("OPTIONS", "/api/workers")]:
        reply = request(stack.base_url + route, method=method, auth=None)
        assert reply.status == 401, (method, route, reply.status)


@pytest.mark.slow
def test_with_credentials_every_data_route_answers(stack: Stack) -> None:
    """Given Flower, when the operator asks with the credentials, then every data route
    answers 200, and the metrics and the API name our worker and ingest tasks."""
    for route in data_routes(stack):
        reply = request(stack.base_url + route)
        assert reply.status == 200, (route, reply.status, reply.body[:300])
    metrics = request(stack.base_url + "/metrics").body
    assert f'task="{TASK_INGEST_PREDICTIONS}"' in metrics
    assert f'worker="{stack.worker_name}"' in metrics
    types = request(stack.base_url + "/api/task/types").body
    assert all(name in types for name in INGEST_TASKS)


@pytest.mark.slow
def test_healthcheck_and_static_files_stay_open(stack: Stack) -> None:
    """Given Flower, then /healthcheck (for probes) and static files answer without
    credentials, and show nothing of the cluster."""
    health = request(stack.base_url + "/healthcheck", auth=None)
    assert (health.status, health.body) == (200, "OK")
    script = request(stack.base_url + "/static/js/flower.js", auth=None)
    assert script.status == 200
    assert stack.worker_name not in script.body


@pytest.mark.slow
def test_a_browser_logs_in_and_sees_the_worker_and_our_ingest_tasks(stack: Stack,
                                                                    artifacts: Path) -> None:
    """Given Flower, when headless Chromium opens it, then without credentials it is refused,
    and logged in with basic auth the workers page lists the worker and the tasks page our
    ingest tasks; screenshots of both pages are kept as test artifacts."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (Debian's chromium package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    timeout_ms = 90_000  # a loaded 2-core machine: each wait is on a condition, not a sleep
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            # a navigation that gets a challenge with no credentials to give fails with
            # ERR_INVALID_AUTH_CREDENTIALS; the browser's request API shows the answer itself
            anonymous = browser.new_context().request.get(f"{stack.base_url}/workers",
                                                          timeout=timeout_ms)
            assert anonymous.status == 401
            assert stack.worker_name not in anonymous.text()

            context = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD},
                viewport={"width": 1400, "height": 900})
            context.set_default_timeout(timeout_ms)
            page = context.new_page()
            response = page.goto(f"{stack.base_url}/workers")
            assert response is not None and response.status == 200
            expect(page.locator("#workers-table")).to_contain_text(stack.worker_name,
                                                          timeout=timeout_ms)
            page.screenshot(path=artifacts / "flower-workers.png", full_page=True)

            response = page.goto(f"{stack.base_url}/tasks")
            assert response is not None and response.status == 200
            for name in INGEST_TASKS:
                expect(page.locator("#tasks-table").get_by_text(name).first).to_be_visible(
                    timeout=timeout_ms)
            page.screenshot(path=artifacts / "flower-tasks.png", full_page=True)
        finally:
            browser.close()


# --- refusals: one line, exit 1, Flower never starts ------------------------------------------

def _mlops_flower(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # nothing listens on this Redis: a refusal must come before any connection
    return subprocess.run([sys.executable, "-m", "mlops_tasks.cli.main", "flower",
                           "--port", str(free_port()), *args],
                          env=project_env(f"redis://127.0.0.1:{free_port()}/0", **env),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "env", "expected"), [
    ((), {}, "error: MLOPS_FLOWER_BASIC_AUTH is not set: Flower never runs without auth"),
    ((), {"MLOPS_FLOWER_BASIC_AUTH": "ops:pw", "FLOWER_UNAUTHENTICATED_API": "true"},
     "error: FLOWER_UNAUTHENTICATED_API='true' is not allowed"),
    (("--basic_auth=other:pw",), {"MLOPS_FLOWER_BASIC_AUTH": "ops:pw"},
     "error: --basic_auth: not allowed; Flower's credentials come from MLOPS_FLOWER_BASIC_AUTH"),
], ids=["no-credentials", "unauthenticated-api", "credentials-on-the-command-line"])
def test_flower_refuses_to_start_open(args: tuple[str, ...], env: dict[str, str],
                                      expected: str) -> None:
    """Given no credentials, FLOWER_UNAUTHENTICATED_API, or credentials on the command line,
    when `mlops flower` starts, then it exits 1 with one line naming the cause, no
    traceback, and no password."""
    result = _mlops_flower(*args, **env)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected), lines[0]
    assert "pw" not in lines[0].removeprefix(expected)


def test_a_false_unauthenticated_api_setting_is_accepted_and_removed() -> None:
    """Given FLOWER_UNAUTHENTICATED_API=false, the launch checks pass and the variable is
    removed, so Flower never reads it."""
    from mlops_tasks.flower_auth import check_environment

    environ = {"FLOWER_UNAUTHENTICATED_API": "false"}
    check_environment(environ)
    assert environ == {}


# --- the credential check, a pure function ----------------------------------------------------

def _basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


@pytest.mark.parametrize(("header", "allowed"), [
    (_basic("ops:pw"), True),
    (_basic("dev:pw2"), True),  # the second pair
    ("basic " + _basic("ops:pw").split()[1], True),  # the scheme is case-insensitive
    (_basic("ops:pw2"), False),
    (_basic("ops:p"), False),
    (_basic("ops:pwx"), False),
    (_basic("dev:pw"), False),
    ("Bearer " + _basic("ops:pw").split()[1], False),
    ("Basic not*base64", False),
    ("Basic", False),
    ("", False),
    (None, False),
])
def test_is_authorized(header: str | None, allowed: bool) -> None:
    """Only an exact user:password pair of the setting passes, in the basic scheme."""
    assert is_authorized(header, Credentials.parse("ops:pw, dev:pw2")) is allowed


def test_credentials_never_show_in_a_repr() -> None:
    assert "pw" not in repr(Credentials.parse("ops:pw"))



# --- the gate fails closed ----------------------------------------------------------------------

def test_an_application_with_a_route_the_gate_cannot_see_does_not_start() -> None:
    """Given a route whose target is not a request handler (it would bypass
    get_handler_delegate), when the gated application is built, then it refuses to."""
    import tornado.routing
    import tornado.web

    from mlops_tasks.errors import MlopsError
    from mlops_tasks.flower_auth import gated_application

    class Page(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("data")

    gated = gated_application(tornado.web.Application, Credentials.parse("ops:pw"))
    gated([(r"/page", Page),
           (r"/nested/.*", tornado.routing.RuleRouter([(r"/nested/page", Page)]))])
    with pytest.raises(MlopsError, match="routes the authentication gate cannot check"):
        gated([(r"/page", Page), (r"/raw", tornado.web.Application([(r"/raw", Page)]))])


def test_a_flower_that_builds_its_application_elsewhere_is_refused(monkeypatch) -> None:
    """Given a Flower whose command no longer instantiates flower.app.Flower, when the gate is
    put in place, then it refuses instead of starting Flower open."""
    import flower.command

    from mlops_tasks.errors import MlopsError
    from mlops_tasks.flower_auth import gated_flower_command

    monkeypatch.setattr(flower.command, "Flower", type("Other", (), {}))
    with (pytest.raises(MlopsError, match="authentication gate cannot be put in place"),
          gated_flower_command(Credentials.parse("ops:pw"))):
        pass
