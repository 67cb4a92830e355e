"""The alert rules, checked and unit-tested with promtool, as their users run it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.deploy.tools import DEPLOY, MONITORING, tool_or_skip

RULES = MONITORING / "rules" / "daemon-rules.yml"
RULE_TESTS = MONITORING / "rules" / "daemon-rules.test.yml"


def _promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    promtool = tool_or_skip("promtool", "prometheus")
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _alerts() -> list[dict]:
    return yaml.safe_load(RULES.read_text())["groups"][0]["rules"]


def test_promtool_accepts_the_rules_and_the_scrape_config() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_quiet() -> None:
    cases = [
        check
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for check in test["alert_rule_test"]
    ]
    for rule in _alerts():
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} never shown firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} never shown quiet"


def test_every_alert_is_labelled_for_the_escalation() -> None:
    for rule in _alerts():
        assert rule["labels"]["priority"] in ("P1", "P2", "P3"), rule["alert"]
        assert rule["labels"]["service"] == "daemon"
        assert rule["annotations"]["summary"]


def test_the_runbooks_original_expressions_fail_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests are what caught the runbook's mistakes: put each original
    expression back and the suite must fail on it."""
    originals = {
        "DaemonClusterUnhealthy": 'count(up{job="daemon"}) < 3',
        "DaemonHighErrorRate": "rate(daemon_operations_failed_total[5m]) > 0.01",
        "DaemonHighLatency": "histogram_quantile(0.95, daemon_operation_duration_ms) > 100",
    }
    for alert, expr in originals.items():
        doc = yaml.safe_load(RULES.read_text())
        for rule in doc["groups"][0]["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = expr
        (tmp_path / RULES.name).write_text(yaml.safe_dump(doc, sort_keys=False))
        shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
        result = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
        assert result.returncode != 0, f"the original {alert} passed the unit tests"
        assert f"alertname: {alert}" in result.stdout + result.stderr


def test_the_prometheusrule_holds_exactly_the_rule_file() -> None:
    wrapped = yaml.safe_load(
        (DEPLOY / "kubernetes" / "monitoring" / "prometheus-rules.yaml").read_text()
    )
    assert wrapped["kind"] == "PrometheusRule"
    assert wrapped["metadata"] == {
        "name": "daemon-rules",
        "namespace": "monitoring",
        "labels": {"app": "unrdf-daemon", "release": "prometheus"},
    }
    assert wrapped["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_the_servicemonitor_scrapes_the_daemon_pods_as_job_daemon() -> None:
    monitor = yaml.safe_load(
        (DEPLOY / "kubernetes" / "monitoring" / "servicemonitor.yaml").read_text()
    )
    assert monitor["spec"]["selector"] == {"matchLabels": {"app": "unrdf-daemon"}}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert {"targetLabel": "job", "replacement": "daemon"} in endpoint["relabelings"]
