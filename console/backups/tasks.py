"""Celery beat's part: each cluster's scheduled backups, and the backup alert rules.

`backups.tick` runs every minute (CELERY_BEAT_SCHEDULE in settings): for each cluster
whose schedule is due (no backup newer than its interval) it asks for a `backup` run
as the `schedule` user (an operator: runs need one), then evaluates the backup rules.
A cluster busy with another run is simply tried again on the next tick.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.utils import timezone

from console.backups import alerting
from console.backups.models import Backup, BackupSchedule
from console.clusters.models import Cluster
from console.core.roles import set_role
from console.runbooks import preflight, services

log = logging.getLogger("console.backups")
SCHEDULE_USER = "schedule"


def schedule_user() -> object:
    user, created = get_user_model().objects.get_or_create(username=SCHEDULE_USER)
    if created:
        user.set_unusable_password()  # nobody logs in as the schedule
        user.save(update_fields=["password"])
        set_role(user, "operator")
    return user


def due(cluster: Cluster, now: dt.datetime) -> bool:
    schedule, _ = BackupSchedule.objects.get_or_create(cluster=cluster)
    if not schedule.enabled:
        return False
    newest = Backup.objects.filter(cluster=cluster).order_by("-created_at").first()
    return newest is None or now - newest.created_at >= dt.timedelta(hours=schedule.interval_hours)


@shared_task(name="backups.tick", ignore_result=True)
def tick() -> None:
    now = timezone.now()
    for cluster in Cluster.objects.all():
        try:
            # Preflight first, quietly: a busy or unreachable cluster is tried again next
            # minute, without a refused run on record every minute.
            if due(cluster, now) and preflight.check(cluster, "backup", {}).ok:
                outcome = services.request_run(cluster, "backup", {}, schedule_user())
                if not outcome.ok:
                    log.info("scheduled backup of %s not now: %s", cluster.name, outcome.reasons)
            alerting.evaluate(cluster, now)
        except Exception:  # one cluster's trouble must not stop the others' backups
            log.exception("backup tick failed for cluster %s", cluster.name)
