"""The weekly maintenance review (runbook "Weekly Maintenance"): 7-day success rate and
p95 against target, backups, TLS expiry, data-directory growth per node, releases.

What the console does not track yet is reported as unknown with the reason, never
invented. Backups come from the backups app's rows (the latest verified one and its age),
certificate expiry from each node served over HTTPS (`tls.py`), releases from the
Release rows and the release each node reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.utils import timezone

from console.backups.models import Backup
from console.clusters.models import Cluster, Node, Release
from console.reports import conf, stats
from console.reports.models import DataDirSize
from console.reports.tls import certificate_days_left

WINDOW = timedelta(days=7)
NO_VERIFIED_BACKUP = "no verified backup of this cluster"


@dataclass(frozen=True)
class NodeMaintenance:
    name: str
    version: str
    data_dir_bytes: int | None
    data_dir_growth_bytes: int | None  # vs the oldest size recorded in the window
    growth_since: date | None
    tls_days_left: int | None
    tls_note: str


@dataclass
class WeeklyReport:
    cluster: str
    generated_at: datetime
    start: datetime
    end: datetime
    operations: int
    errors: int
    success_rate_pct: float | None
    success_target_pct: float
    success_on_target: bool | None
    p95_ms: float | None
    p95_target_ms: float
    p95_on_target: bool | None
    latest_verified_backup_id: int | None
    latest_verified_backup_at: datetime | None
    latest_verified_backup_age_h: float | None
    backups_in_window: int
    backups_note: str
    versions_running: list[str]  # package versions the nodes report
    releases_running: list[str]  # release names the nodes report
    newer_releases: list[str]  # verified, added after the newest release running here
    nodes: list[NodeMaintenance] = field(default_factory=list)


def record_data_dir_sizes(today: date | None = None) -> int:
    """Keep today's data-directory size of every node that reported one (the first
    observation of the day wins; re-running is a no-op). Returns rows written."""
    today = today or timezone.now().date()
    # Called every few seconds: write only for nodes that lack today's row (SQLite
    # serialises writers, so an idle pass should not take the write lock).
    recorded = DataDirSize.objects.filter(day=today).values_list("node_id", flat=True)
    rows = [
        DataDirSize(node=node, day=today, data_dir_bytes=node.data_dir_bytes)
        for node in Node.objects.filter(removed=False, data_dir_bytes__isnull=False).exclude(
            pk__in=recorded
        )
    ]
    if not rows:
        return 0
    DataDirSize.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _node_line(node: Node, since: date, now: datetime) -> NodeMaintenance:
    oldest = DataDirSize.objects.filter(node=node, day__gte=since).order_by("day").first()
    growth = None
    if oldest is not None and node.data_dir_bytes is not None:
        growth = node.data_dir_bytes - oldest.data_dir_bytes
    days_left, tls_note = certificate_days_left(node.http_url, now)
    return NodeMaintenance(
        name=node.name,
        version=node.version,
        data_dir_bytes=node.data_dir_bytes,
        data_dir_growth_bytes=growth,
        growth_since=oldest.day if oldest else None,
        tls_days_left=days_left,
        tls_note=tls_note,
    )


def newer_verified_releases(running: list[str]) -> list[str]:
    """Verified releases added after the newest one this cluster runs (all verified ones
    when it runs none the console knows), newest first."""
    known = Release.objects.filter(name__in=running).order_by("-added_at").first()
    candidates = Release.objects.filter(status=Release.Status.VERIFIED).exclude(name__in=running)
    if known is not None:
        candidates = candidates.filter(added_at__gt=known.added_at)
    return list(candidates.order_by("-added_at").values_list("name", flat=True))


def weekly_report(cluster: Cluster, now: datetime | None = None) -> WeeklyReport:
    end = now or timezone.now()
    start = end - WINDOW
    figures = stats.execution_figures(cluster, start, end)
    success_target, p95_target = conf.success_target_pct(), conf.p95_target_ms()
    nodes = list(cluster.nodes.filter(removed=False))
    running = sorted({n.release for n in nodes if n.release})
    verified = (
        Backup.objects.filter(cluster=cluster, verification="verified")
        .order_by("-created_at", "-id")
        .first()
    )
    age_h = (end - verified.created_at).total_seconds() / 3600 if verified else None
    return WeeklyReport(
        cluster=cluster.name,
        generated_at=end,
        start=start,
        end=end,
        operations=figures.operations,
        errors=figures.errors,
        success_rate_pct=figures.success_rate_pct,
        success_target_pct=success_target,
        success_on_target=None
        if figures.success_rate_pct is None
        else figures.success_rate_pct >= success_target,
        p95_ms=figures.p95_ms,
        p95_target_ms=p95_target,
        p95_on_target=None if figures.p95_ms is None else figures.p95_ms <= p95_target,
        latest_verified_backup_id=verified.id if verified else None,
        latest_verified_backup_at=verified.created_at if verified else None,
        latest_verified_backup_age_h=age_h,
        backups_in_window=Backup.objects.filter(cluster=cluster, created_at__gte=start).count(),
        backups_note=f"latest verified backup #{verified.id}, {age_h:.1f} h old"
        if verified
        else NO_VERIFIED_BACKUP,
        versions_running=sorted({n.version for n in nodes if n.version}),
        releases_running=running,
        newer_releases=newer_verified_releases(running),
        nodes=[_node_line(n, start.date(), end) for n in nodes],
    )
