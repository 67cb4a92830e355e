"""Which backups to keep: the last N, and the newest of each of the last M weeks.

Only verified backups count as kept copies of a week (a failed one protects nothing),
and a backup still being verified is never pruned. Every pruned backup is journaled.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from console.backups.models import Backup, BackupSchedule
from console.backups.storage import Storage, default_storage
from console.clusters.models import Cluster
from console.events import journal


def to_keep(backups: list[Backup], keep_last: int, keep_weekly: int, now: dt.datetime) -> set[int]:
    """Ids to keep of `backups` (any order)."""
    newest_first = sorted(backups, key=lambda b: (b.created_at, b.id), reverse=True)
    keep = {b.id for b in newest_first[:keep_last]}
    keep |= {b.id for b in newest_first if b.verification in ("pending", "verifying")}
    weeks: dict[int, int] = {}
    for b in newest_first:
        week = (now - b.created_at).days // 7
        if week < keep_weekly and b.verification == "verified" and week not in weeks:
            weeks[week] = b.id
    return keep | set(weeks.values())


def prune(cluster: Cluster, actor: str, storage: Storage | None = None) -> list[int]:
    storage = storage or default_storage()
    schedule, _ = BackupSchedule.objects.get_or_create(cluster=cluster)
    backups = list(Backup.objects.filter(cluster=cluster))
    keep = to_keep(backups, schedule.keep_last, schedule.keep_weekly, timezone.now())
    pruned = []
    for b in backups:
        if b.id in keep:
            continue
        storage.delete(b.location)
        journal.append(
            "backup.pruned",
            actor=actor,
            cluster=cluster,
            backup_id=b.id,
            created_at=b.created_at.isoformat(),
            verification=b.verification,
        )
        b.delete()
        pruned.append(b.id)
    return pruned
