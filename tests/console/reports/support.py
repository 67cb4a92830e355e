"""Building a cluster's past for the report tests: executions, journal events and alerts
at chosen times (rows whose `at` is auto-set are moved with a queryset update)."""

from __future__ import annotations

import datetime as dt

from console.alerts.models import Alert
from console.clusters.models import Cluster, Execution
from console.events import journal
from console.events.models import Event


def make_cluster(name: str = "prod", created_at: dt.datetime | None = None) -> Cluster:
    cluster = Cluster.objects.create(name=name, cluster_size=3, has_quorum=True, leader_name="n0")
    if created_at is not None:
        Cluster.objects.filter(pk=cluster.pk).update(created_at=created_at)
        cluster.refresh_from_db()
    return cluster


def add_execution(
    cluster: Cluster, at: dt.datetime, duration_ms: float, status: str = "success", error: str = ""
) -> Execution:
    seq = Execution.objects.filter(cluster=cluster).count() + 1
    return Execution.objects.create(
        cluster=cluster,
        seq=seq,
        execution_id=f"x{seq}",
        operation_id="op",
        status=status,
        duration_ms=duration_ms,
        node_name="n0",
        started_at=at,
        finished_at=at,
        error=error,
    )


def add_event(cluster: Cluster, kind: str, at: dt.datetime, **payload: object) -> Event:
    event = journal.append(kind, actor="collector", cluster=cluster, **payload)
    Event.objects.filter(pk=event.pk).update(at=at)
    return event


def add_fired_alert(
    cluster: Cluster, fired_at: dt.datetime, resolved_at: dt.datetime | None, severity: str
) -> Alert:
    return Alert.objects.create(
        cluster=cluster,
        rule="cluster_size",
        severity=severity,
        state="resolved" if resolved_at else "firing",
        summary="2 of 3 nodes reachable",
        pending_since=fired_at,
        fired_at=fired_at,
        resolved_at=resolved_at,
    )
