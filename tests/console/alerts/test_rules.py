"""Each rule's warning and critical boundaries, as the runbook's table gives them."""

from __future__ import annotations

import pytest

from console.alerts.rules import RULES_BY_NAME, cluster_size_rule, for_seconds


def severity(rule_name: str, value: float) -> str | None:
    verdict = RULES_BY_NAME[rule_name].severity_of(value)
    return verdict[0] if verdict else None


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        # Success rate: target ≥ 99 %, warning below 99, critical below 98.
        ("success_rate", 100.0, None),
        ("success_rate", 99.0, None),
        ("success_rate", 98.99, "warning"),
        ("success_rate", 98.0, "warning"),
        ("success_rate", 97.99, "critical"),
        # P95 latency: target < 100 ms, warning above 100, critical above 500.
        ("p95_latency", 100.0, None),
        ("p95_latency", 100.1, "warning"),
        ("p95_latency", 500.0, "warning"),
        ("p95_latency", 500.1, "critical"),
        # Errors per hour: 0 target, 1-5 warning, more than 5 critical.
        ("error_count", 0, None),
        ("error_count", 1, "warning"),
        ("error_count", 5, "warning"),
        ("error_count", 6, "critical"),
        # Replication lag: target < 10 ms, warning above 10, critical above 100.
        ("replication_lag", 10.0, None),
        ("replication_lag", 10.5, "warning"),
        ("replication_lag", 100.0, "warning"),
        ("replication_lag", 100.5, "critical"),
        # Disk usage: target < 60 %, warning from 60, critical above 90.
        ("disk_usage", 59.9, None),
        ("disk_usage", 60.0, "warning"),
        ("disk_usage", 90.0, "warning"),
        ("disk_usage", 90.1, "critical"),
        # Cluster health for the runbook's 3 nodes: 3 fine, 2 warning, fewer critical.
        ("cluster_size", 3, None),
        ("cluster_size", 2, "warning"),
        ("cluster_size", 1, "critical"),
        ("cluster_size", 0, "critical"),
    ],
)
def test_each_rule_puts_values_in_the_runbooks_bands(
    rule: str, value: float, expected: str | None
) -> None:
    assert severity(rule, value) == expected


def test_an_unknown_value_is_never_an_alert() -> None:
    assert all(rule.severity_of(None) is None for rule in RULES_BY_NAME.values())


def test_cluster_size_warns_on_a_lost_member_and_is_critical_without_quorum() -> None:
    five = cluster_size_rule(5)
    assert five.severity_of(5) is None
    assert five.severity_of(4)[0] == "warning"
    assert five.severity_of(3)[0] == "warning"
    assert five.severity_of(2)[0] == "critical"


def test_for_durations_are_the_runbooks_by_default() -> None:
    durations = {name: for_seconds(rule) for name, rule in RULES_BY_NAME.items()}
    assert durations == {
        "cluster_size": 120,
        "success_rate": 300,
        "p95_latency": 300,
        "error_count": 300,
        "replication_lag": 60,
        "disk_usage": 300,
    }


def test_for_durations_scale_and_take_per_rule_overrides(settings) -> None:
    settings.ALERT_FOR_SCALE = 0.01
    assert for_seconds(RULES_BY_NAME["cluster_size"]) == pytest.approx(1.2)
    settings.ALERT_FOR_S_REPLICATION_LAG = "0"
    assert for_seconds(RULES_BY_NAME["replication_lag"]) == 0


def test_for_durations_come_from_the_environment_for_other_processes(monkeypatch) -> None:
    monkeypatch.setenv("ALERT_FOR_SCALE", "0.5")
    assert for_seconds(RULES_BY_NAME["disk_usage"]) == 150
