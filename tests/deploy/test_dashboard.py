"""The Grafana dashboard: the runbook's key metrics, and every query parses (loaded as
recording rules through `promtool check rules`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.deploy.tools import MONITORING, tool_or_skip

DASHBOARD = MONITORING / "grafana" / "daemon-dashboard.json"
# Grafana's own variables, replaced by what Grafana would put there.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = []
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append(expr)
    return queries


def test_the_dashboard_shows_every_key_metric_of_the_runbook() -> None:
    titles = {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    for row in (
        "Pod Ready",
        "Cluster Health",
        "Success Rate",
        "P95 Latency",
        "Error Count",
        "Replication Lag",
        "Disk Usage",
        "Memory Usage",
    ):
        assert any(title.startswith(row) for title in titles), row


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 12
    assert not any("$" in q for q in queries), "an unknown Grafana variable is left"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    promtool = tool_or_skip("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_a_broken_query_would_be_caught(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum(rate(x[5m])"}]}]}
        )
    )
    promtool = tool_or_skip("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
