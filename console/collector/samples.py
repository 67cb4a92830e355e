"""Chart points: one Sample row per cluster per sample interval, pruned past retention.

Units, for whoever reads them: replication_lag_ms is the cluster's max follower lag;
executions_per_s comes from the lifetime totalOperations delta between two samples;
p95_ms, success_rate (percent, as the daemon reports it) and error_count cover the
daemon's last 5 minutes (/metrics/5m, the runbook's rate window); active and queued are
summed over reachable nodes; max_disk_usage is the fullest data filesystem (0..1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from console.clusters.models import Cluster, Sample
from console.collector.observe import Observation


@dataclass
class Totals:
    at: datetime
    total_operations: int


def executions_per_s(previous: Totals | None, current: Totals | None) -> float | None:
    if previous is None or current is None:
        return None
    seconds = (current.at - previous.at).total_seconds()
    delta = current.total_operations - previous.total_operations
    if seconds <= 0 or delta < 0:
        return None
    return round(delta / seconds, 3)


def totals_of(obs: Observation) -> Totals | None:
    metrics = obs.summary.metrics if obs.summary else None
    if not metrics or metrics.get("totalOperations") is None:
        return None
    return Totals(obs.at, int(metrics["totalOperations"]))


def build_sample(cluster: Cluster, obs: Observation, rate: float | None) -> Sample:
    summary = obs.summary
    window = (summary.metrics_5m if summary else None) or {}
    lifetime = (summary.metrics if summary else None) or {}
    reachable = [p for p in obs.polls if p.reachable]
    queues = [p.queue for p in reachable if p.queue]
    # A node under its disk reserve refuses writes: for the alert its disk is full.
    disks = [
        1.0 if p.view.disk.full else p.view.disk.fs_usage
        for p in reachable
        if p.view is not None
        and p.view.disk is not None
        and (p.view.disk.full or p.view.disk.fs_usage is not None)
    ]
    return Sample(
        cluster=cluster,
        at=obs.at,
        replication_lag_ms=summary.cluster_view.replication_lag_ms if summary else None,
        executions_per_s=rate,
        p95_ms=window.get("p95Duration"),
        success_rate=window.get("successRate"),
        total_operations=lifetime.get("totalOperations"),
        error_count=window.get("errorCount"),
        active=sum(int(q.get("active") or 0) for q in queues) if queues else None,
        queued=sum(int(q.get("queued") or 0) for q in queues) if queues else None,
        max_disk_usage=max(disks) if disks else None,
    )


def prune_samples(now: datetime, retention_s: float) -> int:
    deleted, _ = Sample.objects.filter(at__lt=now - timedelta(seconds=retention_s)).delete()
    return deleted
