"""The runbook's weekly check "backups exist and are recent", as alert rules.

- `backup_age`: hours since the newest *verified* backup (since the schedule began when
  there is none). Warning past the schedule's interval plus an hour of slack (one run
  missed or late), critical past twice the interval. Only for clusters with an enabled
  schedule.
- `backup_verification`: 1 when the newest finished verification failed: critical at once.

The collector evaluates the runbook's metric rules; these are evaluated by the backups
app (each minute from Celery beat, and right after every verification) through the same
state machine, `console.alerts.evaluate.evaluate_rule`, so they page, show and resolve
like every other alert.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from console.alerts.evaluate import evaluate_rule
from console.alerts.models import ACTIVE_STATES, Alert
from console.alerts.rules import Rule, Threshold
from console.backups.models import Backup, BackupSchedule
from console.clusters.models import Cluster

VERIFICATION_RULE = Rule(
    "backup_verification",
    "Latest backup verification failed",
    "",
    warning=Threshold(">=", 1),
    critical=Threshold(">=", 1),
    for_s=0,
    prometheus_alert="",
)


def age_rule(interval_hours: int) -> Rule:
    return Rule(
        "backup_age",
        "Hours since the last verified backup",
        " h",
        warning=Threshold(">", interval_hours + 1),
        critical=Threshold(">", 2 * interval_hours),
        for_s=0,
        prometheus_alert="",
    )


def observe(cluster: Cluster, now: dt.datetime) -> dict[str, float | None]:
    schedule = BackupSchedule.objects.filter(cluster=cluster, enabled=True).first()
    age = None
    if schedule is not None:
        newest = (
            Backup.objects.filter(cluster=cluster, verification="verified")
            .order_by("-created_at")
            .first()
        )
        since = newest.created_at if newest else schedule.created_at
        age = round((now - since).total_seconds() / 3600, 2)
    last = (
        Backup.objects.filter(cluster=cluster, verification__in=("verified", "failed"))
        .order_by("-verified_at")
        .first()
    )
    failed = 1.0 if last is not None and last.verification == "failed" else 0.0
    return {"backup_age": age, "backup_verification": failed}


def evaluate(cluster: Cluster, now: dt.datetime | None = None) -> None:
    now = now or timezone.now()
    observed = observe(cluster, now)
    schedule = BackupSchedule.objects.filter(cluster=cluster).first()
    rules = [VERIFICATION_RULE, age_rule(schedule.interval_hours if schedule else 24)]
    open_alerts = {
        a.rule: a
        for a in Alert.objects.filter(
            cluster=cluster, state__in=ACTIVE_STATES, rule__in=[r.name for r in rules]
        )
    }
    for rule in rules:
        evaluate_rule(cluster, rule, observed[rule.name], now, open_alerts.get(rule.name))
