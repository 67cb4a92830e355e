"""One delivery attempt: claim the row, send, record the outcome, journal it.

The claim (pending -> sending, a conditional UPDATE) makes a duplicated task message
harmless. A failure leaves the row pending for the task's retry, or failed after
NOTIFY_MAX_ATTEMPTS; a channel failing NOTIFY_FAILING_AFTER times in a row raises a
`notify_channel:<name>` alert (its next success resolves it), which the other
channels then carry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.events import journal
from console.notifications import conf, messages, senders
from console.notifications.models import Channel, Delivery

log = logging.getLogger("console.notifications")
ACTOR = "worker"


@dataclass(frozen=True)
class Outcome:
    status: str  # sent, failed, pending (try again), skipped (not ours to send now)
    retry_in_s: float | None = None
    error: str = ""


def attempt(delivery_id: int) -> Outcome:
    now = timezone.now()
    d = Delivery.objects.select_related("channel").filter(pk=delivery_id).first()
    if d is None or d.status != "pending":
        return Outcome("skipped")
    if d.not_before and d.not_before > now:  # quiet hours: not yet
        return Outcome("pending", (d.not_before - now).total_seconds())
    # enqueued_at doubles as "last activity": the dispatcher requeues a row idle too long.
    claimed = Delivery.objects.filter(pk=d.pk, status="pending").update(
        status="sending", attempts=F("attempts") + 1, enqueued_at=now
    )
    if not claimed:
        return Outcome("skipped")
    d.refresh_from_db()
    try:
        senders.send(d.channel, messages.build(d))
        error = ""
    except senders.SendError as err:
        error = str(err)
    except Exception as err:  # a bug in building the message must not wedge the row
        log.exception("delivery %s failed unexpectedly", d.pk)
        error = f"{type(err).__name__}: {str(err)[:160]}"
    return _record(d, error)


def _record(d: Delivery, error: str) -> Outcome:
    now = timezone.now()
    final = not error or d.attempts >= conf.max_attempts()
    status = "sent" if not error else ("failed" if final else "pending")
    Delivery.objects.filter(pk=d.pk).update(
        status=status, last_error=error, sent_at=now if not error else None, enqueued_at=now
    )
    journal.append(
        "notification.attempt",
        actor=ACTOR,
        delivery_id=d.pk,
        channel=d.channel.name,
        key=d.key,
        attempt=d.attempts,
        ok=not error,
        error=error or None,
        final=final,
    )
    if error:
        Channel.objects.filter(pk=d.channel_id).update(failures_in_a_row=F("failures_in_a_row") + 1)
        d.channel.refresh_from_db(fields=["failures_in_a_row"])
        if d.channel.failures_in_a_row >= conf.failing_after():
            _raise_channel_alert(d, error)
        if final:
            return Outcome("failed", error=error)
        return Outcome("pending", conf.retry_delay_s(d.attempts), error)
    Channel.objects.filter(pk=d.channel_id).update(failures_in_a_row=0)
    _resolve_channel_alert(d)
    return Outcome("sent")


def _alert_rule(channel: Channel) -> str:
    return f"notify_channel:{channel.name}"[:64]


def _alert_cluster(d: Delivery) -> Cluster | None:
    """An Alert belongs to a cluster: the channel's, the message's, or the first one."""
    if d.channel.cluster_id:
        return d.channel.cluster
    return Cluster.objects.filter(name=d.cluster_name).first() or Cluster.objects.first()


def _journal_alert(kind: str, alert: Alert) -> None:
    journal.append(
        kind,
        actor=ACTOR,
        cluster=alert.cluster,
        alert_id=alert.pk,
        rule=alert.rule,
        severity=alert.severity,
        value=alert.value,
        threshold=alert.threshold,
        summary=alert.summary,
    )


def _raise_channel_alert(d: Delivery, error: str) -> None:
    cluster = _alert_cluster(d)
    if cluster is None:
        log.warning(
            "channel %s is failing (%s) and there is no cluster to alert on", d.channel, error
        )
        return
    now = timezone.now()
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                cluster=cluster,
                rule=_alert_rule(d.channel),
                severity="warning",
                state="firing",
                value=float(d.channel.failures_in_a_row),
                threshold=float(conf.failing_after()),
                summary=f"notification channel {d.channel.name} failing: {error}"[:200],
                pending_since=now,
                fired_at=now,
            )
            _journal_alert("alert.firing", alert)
    except IntegrityError:
        return  # already firing (one open episode per rule and cluster)


def _resolve_channel_alert(d: Delivery) -> None:
    now = timezone.now()
    for alert in Alert.objects.filter(rule=_alert_rule(d.channel), state="firing"):
        with transaction.atomic():
            if Alert.objects.filter(pk=alert.pk, state="firing").update(
                state="resolved", resolved_at=now, updated_at=now
            ):
                alert.state, alert.resolved_at = "resolved", now
                _journal_alert("alert.resolved", alert)
