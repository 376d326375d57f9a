"""docker/grafana: the dashboard loads as a Grafana dashboard model, every expression in it
selects only metrics (and labels) a real `mlops serve` exposes, it covers what the dashboard
page of `mlops serve` shows, and the provisioning files load it next to compose's Prometheus."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .test_prometheus import ISSUE_FAMILIES, Scrape, scrape  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "docker" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "mlops.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "mlops.yml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24

# The dashboard page's panels (mlops_tasks/server/page.py) by the metrics that show the same
# numbers: each must be in some expression of the Grafana dashboard.
PAGE_METRICS = {
    "accuracy against the alert threshold": {"mlops_model_accuracy", "mlops_accuracy_threshold"},
    "labeled and unlabeled predictions per hour": {"mlops_predictions_total",
                                                   "mlops_ground_truth_total"},
    "false-positive rate": {"mlops_model_false_positive_rate"},
    "mean confidence": {"mlops_model_avg_confidence"},
    "latency p50 / p95": {"mlops_model_latency_p50_seconds", "mlops_model_latency_p95_seconds"},
    "decision threshold and tuning": {"mlops_decision_threshold", "mlops_tuning_runs_total",
                                      "mlops_tuning_improvement_percent"},
    "alerts (firing; frequency)": {"mlops_alerts_firing", "mlops_alerts_total"},
    "pending labels and dead letters": {"mlops_pending_labels", "mlops_dead_letters_total"},
    "scheduled jobs": {"mlops_scheduler_job_runs_total",
                       "mlops_scheduler_job_consecutive_failures",
                       "mlops_scheduler_job_last_success_timestamp_seconds"},
    "beat": {"mlops_beat_heartbeat_age_seconds"},
    "queues": {"mlops_queue_depth", "mlops_queue_unacked"},
    "workers per pool": {"mlops_workers_alive"},
    "registry cache hit rate": {"mlops_registry_cache_requests_total"},
}


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def all_panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for p in doc["panels"]:
        out.append(p)
        out.extend(p.get("panels") or [])
    return out


def expressions(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every query: panel targets, annotations, variable queries."""
    found = [(f"panel {p['title']!r} {t['refId']}", t["expr"])
             for p in all_panels(doc) for t in p.get("targets", [])]
    found += [(f"annotation {a['name']!r}", a["expr"]) for a in doc["annotations"]["list"]
              if a.get("expr")]
    for v in doc["templating"]["list"]:
        if v["type"] == "query":
            query = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            found.append((f"variable {v['name']!r}", query))
    return found


# --- reading PromQL: the metric names and label matchers of an expression -------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*')
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")  # [5m], [$__rate_interval], [1h:5m]
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")  # $model, ${datasource}, $__interval
_LABEL_VALUES = re.compile(r"\blabel_values\s*\(([^,()]*(?:\{[^}]*\})?)\s*(?:,\s*\w+\s*)?\)")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d[\w.]*(?:[eE][+-]?\d+)?)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2"}


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: tuple[str, ...]  # the labels its matchers name


def selectors(expr: str) -> list[Selector]:
    """The series an expression selects: metric names followed by ``{``, ``[`` or standing
    alone, with the labels of their matchers. Function and aggregation names (followed by
    ``(``), keywords, label lists after by/without/on/ignoring/group_*, strings, numbers,
    durations and Grafana's ``$variables`` are not metrics; ``label_values(metric, label)``
    selects its metric only."""
    found: list[Selector] = []
    rest = _LABEL_VALUES.sub(lambda m: f" {m.group(1)} ", expr)

    def with_braces(m: re.Match[str]) -> str:
        labels = []
        for part in filter(str.strip, m.group(2).split(",")):
            parsed = _MATCHER.fullmatch(part)
            assert parsed, f"cannot read matcher {part!r} in {expr!r}"
            labels.append(parsed.group(1))
        assert m.group(1), f"a selector without a metric name in {expr!r}"
        found.append(Selector(m.group(1), tuple(labels)))
        return " "

    rest = _SELECTOR.sub(with_braces, rest)
    for pattern in (_STRING, _LABEL_LISTS, _RANGE, _VARIABLE, re.compile(r"\boffset\s+\S+"),
                    _NUMBER):
        rest = pattern.sub(" ", rest)
    for m in _IDENT.finditer(rest):
        if rest[m.end():].lstrip().startswith("(") or m.group(0) in KEYWORDS:
            continue  # a function or an aggregation, or an operator
        found.append(Selector(m.group(0), ()))
    return found


@pytest.mark.parametrize(("expr", "expected"), [
    ('mlops_model_accuracy{model=~"$model", window="$window"}',
     [("mlops_model_accuracy", ("model", "window"))]),
    ('sum by (model, kind) (increase(mlops_alerts_total{model=~"$model"}[1d]))',
     [("mlops_alerts_total", ("model",))]),
    ('sum(rate(a_total{result="hit"}[$__rate_interval])) / sum(rate(a_total[5m]))',
     [("a_total", ("result",)), ("a_total", ())]),
    ("time() - mlops_job_last_success_timestamp_seconds",
     [("mlops_job_last_success_timestamp_seconds", ())]),
    ("clamp_min(sum by (model) (x_total) - sum without (job) (y_total), 0) / 100 > bool 1e3",
     [("x_total", ()), ("y_total", ())]),
    ("label_values(mlops_predictions_total, model)", [("mlops_predictions_total", ())]),
    ('label_values(m{job="x"}, model)', [("m", ("job",))]),
    ("a * on (model) group_left (version) b offset 1h unless c", [("a", ()), ("b", ()),
                                                                   ("c", ())]),
    ("max_over_time(d[$__range]) and topk(5, e) or vector(0)", [("d", ()), ("e", ())]),
])
def test_the_reader_finds_metrics_and_nothing_else(expr: str,
                                                   expected: list[tuple[str, tuple[str, ...]]]
                                                   ) -> None:
    """Functions, aggregations, keywords, label lists, numbers, durations and variables are
    not metric names; names before braces, ranges or standing alone are."""
    assert [(s.metric, s.labels) for s in selectors(expr)] == expected


# --- the dashboard model --------------------------------------------------------------------


def test_the_dashboard_is_a_grafana_dashboard_model() -> None:
    """Given mlops.json, it has a uid and title, a schema version, panels with unique ids and
    a place on the 24-column grid that no other panel takes, every query on the `datasource`
    variable, and the variables the queries use."""
    doc = dashboard()
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", doc["uid"]), doc["uid"]
    assert doc["title"] and isinstance(doc["schemaVersion"], int)
    assert doc["schemaVersion"] >= 36  # datasource references by uid
    assert doc.get("id") is None  # provisioned: Grafana gives it its own id
    panels = all_panels(doc)
    assert panels
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    taken: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert {"h", "w", "x", "y"} <= set(g), p["title"]
        assert all(isinstance(g[k], int) and g[k] >= 0 for k in "hwxy"), p["title"]
        assert g["w"] >= 1 and g["h"] >= 1 and g["x"] + g["w"] <= GRID_COLUMNS, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                 for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']!r} overlaps another panel"
        taken |= cells
        if p["type"] == "row":
            continue
        assert p["title"] and p["type"] in {"timeseries", "stat", "gauge", "table",
                                           "state-timeline", "bargauge"}, p["title"]
        assert p["datasource"] == DATASOURCE, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE, (p["title"], t["refId"])
            assert t["expr"].strip(), (p["title"], t["refId"])
    for a in doc["annotations"]["list"]:
        assert a["datasource"] == DATASOURCE, a["name"]
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    source = variables["datasource"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    model = variables["model"]
    assert model["type"] == "query" and model["datasource"] == DATASOURCE
    assert model["query"]["query"].startswith("label_values(")
    assert model["multi"] and model["includeAll"]
    used = {m for _, e in expressions(doc) for m in re.findall(r"\$\{?(\w+)", e)}
    assert used - {"__rate_interval", "__interval", "__range"} <= set(variables), used


def test_provisioning_loads_the_dashboard_next_to_composes_prometheus() -> None:
    """Given the provisioning files and compose.yaml's grafana service: the data source is
    compose's Prometheus, the dashboard provider reads the folder compose mounts
    docker/grafana/dashboards at, the provisioning folder is mounted where Grafana reads it,
    and Grafana waits for Prometheus, publishes on 127.0.0.1 and has no default password."""
    sources = yaml.safe_load(DATASOURCES.read_text())
    assert sources["apiVersion"] == 1
    (prometheus,) = sources["datasources"]
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert prometheus["type"] == "prometheus" and prometheus["isDefault"]
    assert prometheus["url"] == "http://prometheus:9090"
    assert "9090:9090" in services["prometheus"]["ports"][0]
    providers = yaml.safe_load(PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    grafana = services["grafana"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"]}
    assert mounts["./docker/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./docker/grafana/dashboards"] == provider["options"]["path"]
    assert re.fullmatch(r"grafana/grafana-oss:\d+\.\d+\.\d+", grafana["image"])
    assert "prometheus" in grafana["depends_on"]
    assert grafana["ports"] == ["${GRAFANA_PUBLISH_ADDRESS:-127.0.0.1}:3000:3000"]
    given = grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert given == "${GRAFANA_ADMIN_PASSWORD:-}", given  # Grafana alone refuses it empty


def test_the_dashboard_has_the_panels_of_the_page() -> None:
    """Every panel of the dashboard page has its metrics in some query of the dashboard."""
    used = {s.metric for _, e in expressions(dashboard()) for s in selectors(e)}
    missing = {panel: metrics - used for panel, metrics in PAGE_METRICS.items()
               if metrics - used}
    assert missing == {}


@pytest.mark.slow
def test_every_expression_selects_exposed_metrics_and_labels(scrape: Scrape) -> None:  # noqa: F811
    """Given /metrics of a real `mlops serve` with every family populated, each metric an
    expression of the dashboard names is exposed, each label its matchers name is one of the
    metric's, and the `window` variable offers exactly the windows exposed."""
    doc = dashboard()
    for where, expr in expressions(doc):
        for sel in selectors(expr):
            assert sel.metric in scrape.families, (where, sel.metric)
            labels = ISSUE_FAMILIES.get(sel.metric) or {
                k for s in scrape.samples.get(sel.metric, []) for k in s.labels}
            assert set(sel.labels) <= labels, (where, sel.metric, sel.labels)
            assert scrape.samples.get(sel.metric), (where, sel.metric, "no sample")
    window = next(v for v in doc["templating"]["list"] if v["name"] == "window")
    offered = {o["value"] for o in window["options"]}
    exposed = {s.labels["window"] for s in scrape.samples["mlops_model_accuracy"]}
    assert offered == exposed
