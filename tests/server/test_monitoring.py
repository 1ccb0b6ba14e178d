"""The shipped alert rules and Grafana dashboard (server/monitoring/) against real nodes.

promtool (Debian package `prometheus`) checks and unit-tests the rules; then a real node
(real Postgres) and a real node with Redis are scraped, and every `proctor_*` name used in a
rule or a dashboard panel must be one they export: a rule on a renamed metric would never fire.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import server
from server.embedded_pg import free_port
from tests.support.cluster import RedisServer
from tests.support.node_process import running_node
from tests.support.postgres import PostgresServer

MONITORING = Path(server.__file__).parent / "monitoring"
ALERTS = MONITORING / "alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
NAME = re.compile(r"\bproctor_[a-z0-9_]+")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install prometheus (./install.sh test does)")
    return found


def rule_exprs(path: Path, group: str | None = None) -> list[str]:
    doc = yaml.safe_load(path.read_text())
    return [str(rule["expr"]) for g in doc["groups"] if group in (None, g["name"]) for rule in g["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [str(t["expr"]) for p in doc["panels"] for t in p.get("targets", [])]


def used_names(exprs: Iterable[str]) -> set[str]:
    return {m.group(0) for e in exprs for m in NAME.finditer(e)}


def exported_names(text: str) -> set[str]:
    """Series names a scrape offers, including those of a labelled metric with no child yet
    (a histogram by generation before the first collection): its type says its series."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(s.name for s in family.samples)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        elif family.type == "counter":
            names.add(family.name + "_total")
        else:
            names.add(family.name)
    return names


def value_of(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    raise AssertionError(f"no unlabelled {name} in the scrape")


# -- promtool ----------------------------------------------------------------------------------


def test_promtool_accepts_the_rules() -> None:
    proc = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_says_how_bad_for_how_long_and_what_to_do() -> None:
    doc = yaml.safe_load(ALERTS.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {
        "ProctorNodeDown",
        "ProctorNotReady",
        "ProctorWriterQueueGrowing",
        "ProctorCommitLatencyHigh",
        "ProctorEventLoopLagHigh",
        "ProctorAnalysisSamplesDropped",
        "ProctorRedisBusDown",
    }
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert len(rule["annotations"]["description"]) > 80, rule["alert"]


def _annotations(alert: str, instance: str, value: str = "") -> dict[str, str]:
    """The rule's annotations as Prometheus renders them for one series."""
    rule = next(r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"] if r["alert"] == alert)
    out = {}
    for key, text in rule["annotations"].items():
        out[key] = text.replace("{{ $labels.instance }}", instance).replace("{{ $value | humanize }}", value)
    return out


def _expect(alert: str, instance: str, severity: str, value: str = "") -> dict[str, Any]:
    return {
        "exp_labels": {"severity": severity, "job": "proctor", "instance": instance},
        "exp_annotations": _annotations(alert, instance, value),
    }


def test_promtool_unit_tests_fire_and_stay_quiet(tmp_path: Path) -> None:
    """Three alerts over synthetic series: each fires after its `for:`, and not before or
    for the series that stays healthy."""
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'proctor_ready{job="proctor",instance="a:8080"}', "values": "1 1 0 0 0 0 0 0"},
                    {"series": 'proctor_ready{job="proctor",instance="b:8081"}', "values": "1x7"},
                    {"series": 'proctor_redis_bus_up{job="proctor",instance="a:8080"}', "values": "1 0 0 0 0"},
                    {"series": 'proctor_redis_bus_up{job="proctor",instance="b:8081"}', "values": "1 0 1 0 1"},
                    # a grows by 500 a minute; b is deep but steady (draining as fast as it fills)
                    {"series": 'proctor_writer_queue_depth{job="proctor",instance="a:8080"}', "values": "100+500x20"},
                    {"series": 'proctor_writer_queue_depth{job="proctor",instance="b:8081"}', "values": "5000x20"},
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "ProctorNotReady", "exp_alerts": []},  # 1 min only
                    {
                        "eval_time": "5m",
                        "alertname": "ProctorNotReady",
                        "exp_alerts": [_expect("ProctorNotReady", "a:8080", "critical")],
                    },
                    {"eval_time": "1m", "alertname": "ProctorRedisBusDown", "exp_alerts": []},
                    {
                        "eval_time": "3m",
                        "alertname": "ProctorRedisBusDown",
                        "exp_alerts": [_expect("ProctorRedisBusDown", "a:8080", "critical")],
                    },
                    {"eval_time": "4m", "alertname": "ProctorWriterQueueGrowing", "exp_alerts": []},
                    {
                        "eval_time": "10m",
                        "alertname": "ProctorWriterQueueGrowing",
                        "exp_alerts": [_expect("ProctorWriterQueueGrowing", "a:8080", "warning", "5.1k")],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_is_grafana_36_plus_on_a_datasource_variable() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["schemaVersion"] >= 36
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    titles = " ".join(p["title"].lower() for p in doc["panels"])
    for topic in (
        "sockets",
        "events",
        "commit latency",
        "writer queue",
        "loop lag",
        "gc",
        "analysis",
        "rooms",
        "cluster nodes",
        "redis",
    ):
        assert topic in titles, topic
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query as a recording rule (Grafana's `$instance` becomes
    the regex it stands for), so a typo in a panel fails here, not on an operator's screen."""
    rules = [
        {"record": f"proctor_dashboard:panel_{i}", "expr": e.replace("$instance", ".*")}
        for i, e in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(rules)} rules found" in proc.stdout


# -- names against real nodes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server_ = RedisServer(tmp_path_factory.mktemp("redis"))
    server_.start()
    try:
        yield server_.url
    finally:
        server_.stop()


@pytest.fixture(scope="module")
def scrapes(postgres: PostgresServer, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """/metrics of a single node and of a node in a (one-node) Redis cluster."""
    database = asyncio.run(postgres.create_database())
    out: dict[str, str] = {}
    for kind, env in (("single", {}), ("cluster", {"PROCTOR_REDIS_URL": redis_url})):
        with running_node(tmp_path_factory.mktemp(kind), database, env) as node:
            node.get("/readyz")
            status, _, body = node.get("/metrics")
            assert status == 200
            out[kind] = body.decode()
    return out


def test_a_single_node_exports_every_name_of_the_node_rules(scrapes: dict[str, str]) -> None:
    missing = used_names(rule_exprs(ALERTS, "proctor-node")) - exported_names(scrapes["single"])
    assert not missing, f"rules use metrics a single node does not export: {sorted(missing)}"
    assert value_of(scrapes["single"], "proctor_ready") == 1


def test_every_name_in_rules_and_dashboard_is_exported(scrapes: dict[str, str]) -> None:
    exported = exported_names(scrapes["single"]) | exported_names(scrapes["cluster"])
    used = used_names(rule_exprs(ALERTS) + dashboard_exprs())
    assert len(used) >= 15  # the regex found the names (an empty set would pass anything)
    missing = used - exported
    assert not missing, f"used but not exported: {sorted(missing)}"
    assert value_of(scrapes["cluster"], "proctor_redis_bus_up") == 1
    assert value_of(scrapes["cluster"], "proctor_cluster_nodes") == 1


def test_a_rule_on_a_metric_no_node_exports_is_caught(scrapes: dict[str, str], tmp_path: Path) -> None:
    """The check itself works: a rule file promtool accepts, on a misspelt histogram and a
    metric that does not exist, is reported with both names."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "bad",
                        "rules": [
                            {
                                "alert": "Typo",
                                "expr": "histogram_quantile(0.99, rate(proctor_commit_latency_bucket[5m])) > 1",
                                "for": "1m",
                                "labels": {"severity": "warning"},
                                "annotations": {"summary": "s", "description": "d"},
                            },
                            {
                                "alert": "Gone",
                                "expr": "proctor_ready == 0 and proctor_no_such_metric > 0",
                                "for": "1m",
                                "labels": {"severity": "warning"},
                                "annotations": {"summary": "s", "description": "d"},
                            },
                        ],
                    }
                ]
            }
        )
    )
    proc = subprocess.run([promtool(), "check", "rules", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # valid PromQL: only our check can tell
    exported = exported_names(scrapes["single"]) | exported_names(scrapes["cluster"])
    assert used_names(rule_exprs(bad)) - exported == {"proctor_commit_latency_bucket", "proctor_no_such_metric"}


# -- a real Prometheus ---------------------------------------------------------------------------


def _prometheus_api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_a_real_prometheus_scrapes_a_node_and_evaluates_rules_and_panels(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """The operator's set-up end to end: job `proctor` scraping a node, the shipped rules
    loaded and evaluated without error, every panel's query answered."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: apt-get install prometheus (./install.sh test does)")
    database = asyncio.run(postgres.create_database())
    with running_node(tmp_path, database) as node:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ALERTS)],
                    "scrape_configs": [
                        {"job_name": "proctor", "static_configs": [{"targets": [f"127.0.0.1:{node.port}"]}]}
                    ],
                }
            )
        )
        with (tmp_path / "prometheus.log").open("wb") as log:
            prom = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=log,
            )
        try:
            deadline = time.monotonic() + 60
            ready: list[Any] = []
            while time.monotonic() < deadline and not ready:
                try:
                    ready = _prometheus_api(port, "/api/v1/query?query=proctor_ready")["data"]["result"]
                except OSError:
                    pass
                time.sleep(0.3)
            assert ready, (tmp_path / "prometheus.log").read_text()[-3000:]
            assert ready[0]["metric"]["job"] == "proctor" and ready[0]["value"][1] == "1"
            time.sleep(2.5)  # a few rule evaluations
            groups = _prometheus_api(port, "/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            assert len(rules) == len(rule_exprs(ALERTS))
            for rule in rules:
                assert rule["health"] == "ok", rule
            # A ready node: no "not ready" even pending (the lag rules depend on this machine's load).
            states = {r["name"]: r["state"] for r in rules}
            assert states["ProctorNotReady"] == states["ProctorNodeDown"] == "inactive", states
            for expr in dashboard_exprs():
                query = urllib.parse.quote(expr.replace("$instance", ".*"))
                answer = _prometheus_api(port, f"/api/v1/query?query={query}")
                assert answer["status"] == "success", (expr, answer)
        finally:
            prom.terminate()
            prom.wait(timeout=30)
