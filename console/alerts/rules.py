"""The runbook's alert rules, as data.

Source: ../shared/seed/operational-runbooks.md, "Key Metrics to Monitor" (thresholds)
and "Prometheus Configuration" (the `for:` durations). The table has a Target, a
Warning and a Critical column; we read the Warning column as the band between the
target and the critical threshold, so "warning" starts where the target ends and
"critical" where the Critical column says. Row by row:

| rule               | runbook row                                   | warning           | critical          | for |
| ------------------ | --------------------------------------------- | ----------------- | ----------------- | --- |
| cluster_size       | Cluster Health: 3 nodes / 2 nodes / < 2 nodes | reachable < size  | reachable < quorum| 2m  |
| success_rate       | Success Rate: ≥ 99 % / ≥ 98 % / < 98 %        | < 99 %            | < 98 %            | 5m  |
| p95_latency        | P95 Latency: < 100ms / < 200ms / > 500ms      | > 100 ms          | > 500 ms          | 5m  |
| error_count        | Error Count: 0/hour / 1-5/hour / > 5/hour     | ≥ 1 per hour      | > 5 per hour      | 5m  |
| replication_lag    | Replication Lag: < 10ms / < 50ms / > 100ms    | > 10 ms           | > 100 ms          | 1m  |
| disk_usage         | Disk Usage: < 60% / < 80% / > 90%             | ≥ 60 %            | > 90 %            | 5m  |

- Cluster Health is written for the runbook's 3-node cluster: warning at 2 reachable,
  critical below 2. We generalise it to any size: warning when a member is unreachable
  but a majority still answers (the cluster works, with less fault tolerance), critical
  below a majority (no quorum, no writes). For 3 nodes that is exactly the table.
  `for: 2m` is DaemonClusterUnhealthy's.
- The P95 table row's Warning column says "< 200ms" while DaemonHighLatency fires at
  > 100 ms; both agree that > 100 ms is off target, so warning starts there.
- Success rate and error count both come from the runbook's error-rate concern
  (DaemonHighErrorRate, `for: 5m`); the table gives each its own thresholds.
- Replication lag: DaemonReplicationLag (`for: 1m`) fires at > 100 ms, the table's
  critical; the table's target (< 10 ms) makes > 10 ms a warning.
- Disk usage: DaemonDiskUsageHigh (`for: 5m`) fires at > 90 %, the critical; the
  target is < 60 %, so 60 % and above is a warning.
- Pod Ready and Memory Usage are Kubernetes/process metrics the collector does not
  observe; they are left to the PrometheusRule in deploy/.

`for:` durations are the runbook's unless configured (tests and demos shorten them):
ALERT_FOR_SCALE multiplies every duration (e.g. 0.01), ALERT_FOR_S_<RULE> (e.g.
ALERT_FOR_S_REPLICATION_LAG=0) sets one rule's duration in seconds. Both are read from
Django settings when set there, else from the environment, at evaluation time.
"""

from __future__ import annotations

import dataclasses
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from daemon.contract import quorum_size

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Threshold:
    op: str
    value: float

    def breached_by(self, observed: float) -> bool:
        return _COMPARE[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    unit: str
    warning: Threshold
    critical: Threshold
    for_s: float
    prometheus_alert: str

    def severity_of(self, observed: float | None) -> tuple[str, Threshold] | None:
        """The worst band `observed` falls in, or None when it is on target (or unknown)."""
        if observed is None:
            return None
        if self.critical.breached_by(observed):
            return "critical", self.critical
        if self.warning.breached_by(observed):
            return "warning", self.warning
        return None

    def summary(self, observed: float, severity: str, threshold: Threshold) -> str:
        return f"{self.title} {observed:g}{self.unit} ({severity}: {threshold}{self.unit})"


RULES: tuple[Rule, ...] = (
    Rule(
        "cluster_size",
        "Reachable nodes",
        " nodes",
        warning=Threshold("<", 3),
        critical=Threshold("<", 2),
        for_s=120,
        prometheus_alert="DaemonClusterUnhealthy",
    ),
    Rule(
        "success_rate",
        "Success rate",
        " %",
        warning=Threshold("<", 99),
        critical=Threshold("<", 98),
        for_s=300,
        prometheus_alert="DaemonHighErrorRate",
    ),
    Rule(
        "p95_latency",
        "P95 latency",
        " ms",
        warning=Threshold(">", 100),
        critical=Threshold(">", 500),
        for_s=300,
        prometheus_alert="DaemonHighLatency",
    ),
    Rule(
        "error_count",
        "Errors in the last hour",
        "",
        warning=Threshold(">=", 1),
        critical=Threshold(">", 5),
        for_s=300,
        prometheus_alert="DaemonHighErrorRate",
    ),
    Rule(
        "replication_lag",
        "Replication lag",
        " ms",
        warning=Threshold(">", 10),
        critical=Threshold(">", 100),
        for_s=60,
        prometheus_alert="DaemonReplicationLag",
    ),
    Rule(
        "disk_usage",
        "Disk usage",
        " %",
        warning=Threshold(">=", 60),
        critical=Threshold(">", 90),
        for_s=300,
        prometheus_alert="DaemonDiskUsageHigh",
    ),
)
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}

# Split brain (issue 12) is judged from one poll of every node, not from the
# database, so the collector evaluates it itself (console/collector/split_brain.py)
# and it is not in RULES. The value is the number of nodes claiming leadership
# wrongly; any is critical. `for:` covers a leader change: for an election timeout
# a deposed leader may still say "leader" (CheckQuorum then steps it down).
SPLIT_BRAIN = Rule(
    "split_brain",
    "Split brain",
    " nodes",
    warning=Threshold(">=", 1),
    critical=Threshold(">=", 1),
    for_s=15,
    prometheus_alert="DaemonSplitBrain",
)


def cluster_size_rule(size: int) -> Rule:
    """The cluster-size rule for a cluster of `size` members (the table is for 3)."""
    quorum = quorum_size(size)
    return dataclasses.replace(
        RULES_BY_NAME["cluster_size"],
        warning=Threshold("<", size),
        critical=Threshold("<", quorum),
    )


def for_seconds(rule: Rule) -> float:
    """How long the condition must hold before a pending alert fires."""
    override = _setting(f"ALERT_FOR_S_{rule.name.upper()}")
    if override is not None:
        return max(0.0, float(override))
    scale = _setting("ALERT_FOR_SCALE")
    return rule.for_s * (max(0.0, float(scale)) if scale is not None else 1.0)


def _setting(name: str) -> str | float | None:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or None
    return value
