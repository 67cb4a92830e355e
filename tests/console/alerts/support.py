"""Shared set-up for the alert tests: a 3-node cluster as the collector leaves it, users, alerts."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from console.alerts.models import Alert
from console.clusters.models import Cluster, Execution, Node, Sample

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def make_cluster(name: str = "prod", size: int = 3) -> Cluster:
    cluster = Cluster.objects.create(
        name=name, cluster_size=size, has_quorum=True, leader_name="n0", last_polled_at=T0
    )
    for i in range(size):
        Node.objects.create(
            cluster=cluster,
            name=f"n{i}",
            http_url=f"http://127.0.0.1:{9000 + i}",
            role="leader" if i == 0 else "follower",
            reachable=True,
            lag_ms=0.0,
        )
    return cluster


def set_reachable(cluster: Cluster, count: int) -> None:
    for i, node in enumerate(cluster.nodes.order_by("name")):
        node.reachable = i < count
        node.save(update_fields=["reachable"])


def set_lag(cluster: Cluster, lag_ms: float) -> None:
    cluster.nodes.filter(name="n1").update(lag_ms=lag_ms)


def add_sample(cluster: Cluster, at: dt.datetime, **values: float) -> Sample:
    defaults = {"success_rate": 100.0, "p95_ms": 5.0, "max_disk_usage": 0.1}
    defaults.update(values)
    return Sample.objects.create(cluster=cluster, at=at, **defaults)


def add_errors(cluster: Cluster, count: int, finished_at: dt.datetime) -> None:
    start = Execution.objects.filter(cluster=cluster).count()
    for seq in range(start, start + count):
        Execution.objects.create(
            cluster=cluster,
            seq=seq,
            execution_id=f"e{seq}",
            operation_id="op",
            status="failure" if seq % 2 else "timeout",
            duration_ms=1.0,
            node_name="n0",
            started_at=finished_at,
            finished_at=finished_at,
        )


def make_user(username: str, role: str | None) -> object:
    user = get_user_model().objects.create_user(username)  # force_login needs no password
    if role is not None:
        # Transactional tests flush the groups the migration made, so make sure they exist.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def make_alert(cluster: Cluster, state: str = "firing", rule: str = "replication_lag") -> Alert:
    return Alert.objects.create(
        cluster=cluster,
        rule=rule,
        severity="warning",
        state=state,
        value=50.0,
        threshold=10.0,
        summary="Replication lag 50 ms (warning: > 10 ms)",
        pending_since=T0,
        fired_at=T0 if state != "pending" else None,
        resolved_at=T0 if state == "resolved" else None,
    )
