"""Asking for backup runs (pages and API share this), and reading backups."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from console.backups.models import Backup, BackupSchedule
from console.clusters.models import Cluster
from console.core.roles import has_role
from console.events import journal
from console.runbooks import services as runs


def backups_of(cluster: Cluster) -> QuerySet[Backup]:
    return Backup.objects.filter(cluster=cluster).select_related("cluster")


def schedule_of(cluster: Cluster) -> BackupSchedule:
    return BackupSchedule.objects.get_or_create(cluster=cluster)[0]


def set_schedule(cluster: Cluster, values: dict[str, Any], user: Any) -> BackupSchedule:
    schedule = schedule_of(cluster)
    for key, value in values.items():
        setattr(schedule, key, value)
    schedule.save(update_fields=list(values))
    journal.append("backup.schedule", actor=user.get_username(), cluster=cluster, **values)
    return schedule


def take(cluster: Cluster, user: Any) -> runs.RunRequest:
    return runs.request_run(cluster, "backup", {}, user)


def verify(row: Backup, user: Any) -> runs.RunRequest:
    return runs.request_run(row.cluster, "verify_backup", {"backup_id": row.id}, user)


def restore(row: Backup, confirm: str, user: Any) -> runs.RunRequest:
    if not has_role(user, "admin"):
        raise PermissionDenied("restoring a backup needs the admin role")
    return runs.request_run(row.cluster, "restore", {"backup_id": row.id, "confirm": confirm}, user)
