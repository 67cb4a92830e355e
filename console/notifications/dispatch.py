"""Planning deliveries: read the journal after the stored cursor, decide which events
become messages for which channels, add the reminders for unacknowledged alerts and the
scheduled reports, and hand each new Delivery to a Celery task.

Exactly once: the cursor moves by a conditional UPDATE from the value this dispatcher
read, in the same transaction as the Delivery rows it planned, so a concurrent
dispatcher's batch rolls back; and (channel, key) is unique, so even a replanned
message reaches each channel once. Cheap enough to run inside the collector's tick:
a few queries, no network (sending happens in the worker).
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.events import stream
from console.events.models import Event
from console.notifications import conf, routing
from console.notifications.models import Cursor, Delivery
from console.reports.weekly import record_data_dir_sizes

log = logging.getLogger("console.notifications")

CURSOR = "journal"
# Runbook run endings worth a person's attention: `failed`; `rolled_back` (an upgrade
# put everything back: the cluster is whole, the release is not); `stale` (the worker
# died: it needs an operator to resume or cancel it); and `needs_operator` (a rollback
# that could not finish: nodes may run mixed releases), which pages.
RUN_ENDINGS = {
    "failed": "warning",
    "rolled_back": "warning",
    "stale": "warning",
    "needs_operator": "critical",
}
FOLLOW_UPS = ("alert.resolved", "alert.acknowledged")  # go where the firing went
LOST_AFTER = timedelta(minutes=15)  # a delivery idle this long (message lost): requeue
DELIVER_TASK = "notifications.deliver"  # by name: tasks.py imports this module


def send(delivery_id: int, eta: datetime | None = None) -> None:
    """Queue one delivery for the worker (its attempt is idempotent: a duplicate
    message finds the row sent, or in flight, and does nothing)."""
    queue = conf.celery_queue() or None
    current_app.send_task(DELIVER_TASK, args=(delivery_id,), eta=eta, queue=queue)


def severity_of(event: Event) -> str | None:
    """The routing severity of an event, or None when it is not sent at all."""
    if event.kind in ("alert.firing", *FOLLOW_UPS):
        return str(event.payload.get("severity") or "warning")
    if event.kind == "run.finished":
        return RUN_ENDINGS.get(str(event.payload.get("status")))
    return None


def _silenced(alert_id: object, now: datetime) -> bool:
    return Alert.objects.filter(pk=alert_id, silenced_until__gt=now).exists()


def _plan_event(event: Event, now: datetime) -> list[Delivery]:
    severity = severity_of(event)
    if severity is None:
        return []
    alert_id = event.payload.get("alert_id") if event.kind.startswith("alert.") else None
    if event.kind == "alert.firing" and _silenced(alert_id, now):
        return []
    channels = routing.channels_for(severity, event.cluster_id)
    if event.kind in FOLLOW_UPS:
        notified = set(
            Delivery.objects.filter(alert_id=alert_id, key__startswith="event:").values_list(
                "channel_id", flat=True
            )
        )
        channels = [c for c in channels if c.id in notified]
    cluster_name = event.cluster.name if event.cluster_id else ""
    return [
        Delivery(
            channel=channel,
            key=f"event:{event.id}",
            severity=severity,
            event=event,
            alert_id=alert_id,
            cluster_name=cluster_name,
            payload={"kind": event.kind},
            not_before=routing.not_before(channel, severity, now),
        )
        for channel in channels
    ]


def plan_journal(limit: int = stream.BATCH) -> int:
    """Plan the events after the cursor; returns how many events were decided."""
    cursor, created = Cursor.objects.get_or_create(
        name=CURSOR, defaults={"last_event_id": stream.head_id()}
    )
    if created:  # a fresh install does not page anyone about the past
        return 0
    start = cursor.last_event_id
    batch = stream.read_after(start, limit=limit)
    if batch.cursor == start:
        return 0
    now = timezone.now()
    with transaction.atomic():
        claimed = Cursor.objects.filter(name=CURSOR, last_event_id=start).update(
            last_event_id=batch.cursor, updated_at=now
        )
        if not claimed:
            return 0  # another dispatcher planned this batch
        for event in batch.events:  # in order: a resolution finds its firing's deliveries
            Delivery.objects.bulk_create(_plan_event(event, now), ignore_conflicts=True)
    return batch.cursor - start


def plan_repeats(now: datetime) -> None:
    """Remind the channels that got an alert's firing while it fires unacknowledged."""
    every_s = conf.repeat_s()
    if every_s <= 0:
        return
    due = Alert.objects.filter(
        state="firing",
        acknowledged_at__isnull=True,
        fired_at__lte=now - timedelta(seconds=every_s),
    ).filter(Q(silenced_until__isnull=True) | Q(silenced_until__lte=now))
    planned = []
    for alert in due.select_related("cluster"):
        n = int((now - alert.fired_at).total_seconds() // every_s)
        first = Delivery.objects.filter(alert_id=alert.pk, key__startswith="event:")
        for channel_id in set(first.values_list("channel_id", flat=True)):
            planned.append(
                Delivery(
                    channel_id=channel_id,
                    key=f"repeat:{alert.pk}:{n}",
                    severity=alert.severity,
                    alert_id=alert.pk,
                    cluster_name=alert.cluster.name,
                    payload={"repeat": n},
                )
            )
    _create_missing(planned)


def due_reports(now: datetime) -> list[tuple[str, str]]:
    """(report, period) pairs whose send time has passed: the daily standup each day, the
    weekly review each Monday, last month's review on the 1st, at NOTIFY_REPORTS_HOUR UTC."""
    if now.hour < conf.reports_hour():
        now -= timedelta(days=1)  # before today's hour: yesterday's schedule is the latest
    today: date = now.date()
    monday = today - timedelta(days=today.weekday())
    last_month = today.replace(day=1) - timedelta(days=1)
    return [
        ("daily", today.isoformat()),
        ("weekly", monday.isoformat()),
        ("monthly", last_month.strftime("%Y-%m")),
    ]


def plan_reports(now: datetime) -> None:
    channels = routing.channels_for("report", None)
    if not channels:
        return
    planned = []
    for cluster in Cluster.objects.all():
        for report, period in due_reports(now):
            for channel in channels:
                if channel.cluster_id not in (None, cluster.id):
                    continue
                planned.append(
                    Delivery(
                        channel=channel,
                        key=f"report:{report}:{cluster.name}:{period}",
                        severity="report",
                        cluster_name=cluster.name,
                        payload={"report": report, "cluster": cluster.name, "period": period},
                        not_before=routing.not_before(channel, "report", now),
                    )
                )
    _create_missing(planned)


def _create_missing(planned: list[Delivery]) -> None:
    """Insert only deliveries not planned before: these passes repeat every few seconds,
    and an insert that would be ignored still takes SQLite's write lock."""
    keys = {d.key for d in planned}
    done = set(Delivery.objects.filter(key__in=keys).values_list("channel_id", "key"))
    missing = [d for d in planned if (d.channel_id, d.key) not in done]
    if missing:
        Delivery.objects.bulk_create(missing, ignore_conflicts=True)


def enqueue_pending(now: datetime) -> list[int]:
    """Hand every unqueued (or lost) pending delivery to the worker, once: the enqueued_at
    claim is conditional, so two dispatchers never both queue one delivery."""
    idle = now - LOST_AFTER
    # A worker that died mid-send leaves its row `sending`: after LOST_AFTER it is sent
    # again (at least once; the alternative is never).
    stuck = Delivery.objects.filter(status="sending", enqueued_at__lt=idle)
    if stuck.exists():  # an UPDATE of nothing still takes SQLite's write lock
        stuck.update(status="pending")
    lost = Q(enqueued_at__lt=idle, not_before__isnull=True)
    queued = []
    for d in Delivery.objects.filter(Q(enqueued_at__isnull=True) | lost, status="pending"):
        claim = Delivery.objects.filter(pk=d.pk, status="pending", enqueued_at=d.enqueued_at)
        if claim.update(enqueued_at=now):
            eta = d.not_before if d.not_before and d.not_before > now else None
            transaction.on_commit(lambda pk=d.pk, eta=eta: send(pk, eta))
            queued.append(d.pk)
    return queued


def dispatch(now: datetime | None = None) -> None:
    """One planning pass: the journal, reminders, scheduled reports, then enqueue."""
    now = now or timezone.now()
    while plan_journal() >= stream.BATCH:
        pass  # a backlog: keep planning full batches
    plan_repeats(now)
    plan_reports(now)
    record_data_dir_sizes(now.date())
    enqueue_pending(now)
    prune(now)


def prune(now: datetime) -> int:
    """Delete sent and failed deliveries older than NOTIFY_KEEP_DAYS; the table grew
    forever. Kept: those of an alert still firing, which its reminders look up
    (`plan_repeats`). Old journal events and report periods are never planned again,
    so their (channel, key) guard is not needed once they are this old."""
    firing = Alert.objects.filter(state="firing").values("pk")
    old = Delivery.objects.filter(
        status__in=("sent", "failed"), enqueued_at__lt=now - timedelta(days=conf.keep_days())
    ).exclude(alert_id__in=firing)
    deleted, _ = old.delete()
    return deleted


_last_run = 0.0


def dispatch_from_tick(every_s: float = 2.0) -> None:
    """The collector's hook: at most every `every_s`, never raising into the tick."""
    global _last_run
    if time.monotonic() - _last_run < every_s:
        return
    _last_run = time.monotonic()
    try:
        dispatch()
    except Exception:
        log.exception("planning notifications failed; the next tick retries")
