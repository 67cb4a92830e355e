"""The daily standup (runbook "Daily Standup Checks"): the cluster's health now, the
alerts of the last 24 hours and how they ended, failed executions with their errors,
leader changes and runbook runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.events.models import Event
from console.reports import stats
from console.runbooks.models import RunbookRun

WINDOW = timedelta(hours=24)
LISTED = 20  # rows per list; the counts cover the whole window


@dataclass(frozen=True)
class NodeHealth:
    name: str
    role: str
    reachable: bool
    lag_ms: float | None
    version: str


@dataclass(frozen=True)
class AlertLine:
    id: int
    rule: str
    severity: str
    state: str
    summary: str
    fired_at: datetime | None
    resolved_at: datetime | None
    acknowledged_by: str | None


@dataclass(frozen=True)
class FailedExecution:
    execution_id: str
    operation_id: str
    status: str
    node_name: str
    finished_at: datetime
    error: str


@dataclass(frozen=True)
class LeaderChange:
    at: datetime
    from_leader: str | None
    to_leader: str | None
    term: int | None


@dataclass(frozen=True)
class RunLine:
    id: int
    action: str
    status: str
    requested_by: str | None
    created_at: datetime
    error: str


@dataclass
class DailyReport:
    cluster: str
    generated_at: datetime
    start: datetime
    end: datetime
    leader: str
    has_quorum: bool
    cluster_size: int
    reachable_nodes: int
    replication_lag_ms: float | None
    nodes: list[NodeHealth]
    operations: int
    errors: int
    success_rate_pct: float | None
    alerts_fired: int
    alerts: list[AlertLine] = field(default_factory=list)
    failed_executions: list[FailedExecution] = field(default_factory=list)
    leader_changes: list[LeaderChange] = field(default_factory=list)
    runs: list[RunLine] = field(default_factory=list)


def daily_report(cluster: Cluster, now: datetime | None = None) -> DailyReport:
    end = now or timezone.now()
    start = end - WINDOW
    nodes = list(cluster.nodes.filter(removed=False))
    figures = stats.execution_figures(cluster, start, end)
    fired = Alert.objects.filter(cluster=cluster, fired_at__gte=start, fired_at__lt=end)
    failed = stats.executions_in(cluster, start, end).exclude(status=stats.SUCCESS)
    changes = Event.objects.filter(
        cluster=cluster, kind="leader.changed", at__gte=start, at__lt=end
    ).order_by("-id")
    runs = RunbookRun.objects.filter(cluster=cluster, created_at__gte=start, created_at__lt=end)
    return DailyReport(
        cluster=cluster.name,
        generated_at=end,
        start=start,
        end=end,
        leader=cluster.leader_name,
        has_quorum=cluster.has_quorum,
        cluster_size=cluster.cluster_size,
        reachable_nodes=sum(1 for n in nodes if n.reachable),
        replication_lag_ms=cluster.replication_lag_ms,
        nodes=[NodeHealth(n.name, n.role, n.reachable, n.lag_ms, n.version) for n in nodes],
        operations=figures.operations,
        errors=figures.errors,
        success_rate_pct=figures.success_rate_pct,
        alerts_fired=fired.count(),
        alerts=[
            AlertLine(
                a.id,
                a.rule,
                a.severity,
                a.state,
                a.summary,
                a.fired_at,
                a.resolved_at,
                a.acknowledged_by.username if a.acknowledged_by else None,
            )
            for a in fired.select_related("acknowledged_by").order_by("-fired_at")[:LISTED]
        ],
        failed_executions=[
            FailedExecution(
                e.execution_id, e.operation_id, e.status, e.node_name, e.finished_at, e.error
            )
            for e in failed.order_by("-finished_at")[:LISTED]
        ],
        leader_changes=[
            LeaderChange(e.at, e.payload.get("from"), e.payload.get("to"), e.payload.get("term"))
            for e in changes[:LISTED]
        ],
        runs=[
            RunLine(
                r.id,
                r.action,
                r.status,
                r.requested_by.username if r.requested_by else None,
                r.created_at,
                r.error,
            )
            for r in runs.select_related("requested_by").order_by("-id")[:LISTED]
        ],
    )
