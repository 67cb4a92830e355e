"""What people do to alerts (acknowledge, silence) and what pages show of them.

Views and the API call these; the checks live here once, so both refuse the same
things with the same words. Both actions are journaled with the person as actor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from console.alerts.models import ACTIVE_STATES, Alert
from console.core.roles import has_role
from console.events import journal

COMMENT_MAX_CHARS = 500
SILENCE_MAX = dt.timedelta(days=30)
SILENCE_MAX_MINUTES = int(SILENCE_MAX.total_seconds() // 60)
ACTING_ROLE = "operator"
RECENT_RESOLVED = 50
MAX_ID = 2**63 - 1  # larger ids cannot exist, and PostgreSQL refuses to compare them


class AlertActionRefused(Exception):
    """A request we refuse, with a one-line reason and the HTTP status that fits it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def get_alert(alert_id: int) -> Alert:
    alert = None
    if 0 < alert_id <= MAX_ID:
        alert = Alert.objects.select_related("cluster").filter(pk=alert_id).first()
    if alert is None:
        raise AlertActionRefused(f"no alert with id {alert_id}", status=404)
    return alert


def acknowledge(alert: Alert, *, user: Any, comment: str, now: dt.datetime | None = None) -> Alert:
    """Record that `user` has seen the alert (and what they make of it)."""
    _require_operator(user)
    comment = _clean_comment(comment)
    _require_open(alert, "acknowledge")
    now = now or timezone.now()
    with transaction.atomic():
        Alert.objects.filter(pk=alert.pk).update(
            acknowledged_by=user, acknowledged_at=now, ack_comment=comment
        )
        alert.acknowledged_by, alert.acknowledged_at, alert.ack_comment = user, now, comment
        journal.append(
            "alert.acknowledged",
            actor=user.get_username(),
            cluster=alert.cluster,
            alert_id=alert.pk,
            comment=comment,
        )
    return alert


def silence(
    alert: Alert,
    *,
    user: Any,
    until: dt.datetime | None = None,
    minutes: int | None = None,
    now: dt.datetime | None = None,
) -> Alert:
    """Silence the alert until a time (given, or `minutes` from now).

    A silenced alert still changes state; pages show it as silenced, and a new episode
    of the same rule that starts before `until` is silenced too.
    """
    _require_operator(user)
    now = now or timezone.now()
    until = silence_end(until=until, minutes=minutes, now=now)
    _require_open(alert, "silence")
    with transaction.atomic():
        Alert.objects.filter(pk=alert.pk).update(silenced_until=until, silenced_by=user)
        alert.silenced_until, alert.silenced_by = until, user
        journal.append(
            "alert.silenced",
            actor=user.get_username(),
            cluster=alert.cluster,
            alert_id=alert.pk,
            until=until.isoformat(),
        )
    return alert


def silence_end(*, until: dt.datetime | None, minutes: int | None, now: dt.datetime) -> dt.datetime:
    """Validate a silence request: exactly one of `until` or `minutes`, in the future,
    at most SILENCE_MAX ahead."""
    if (until is None) == (minutes is None):
        raise AlertActionRefused("give either until (a time) or minutes, not both or neither")
    if minutes is not None:
        if not 1 <= minutes <= SILENCE_MAX_MINUTES:
            raise AlertActionRefused(f"minutes must be between 1 and {SILENCE_MAX_MINUTES}")
        return now + dt.timedelta(minutes=minutes)
    assert until is not None
    if timezone.is_naive(until):
        until = timezone.make_aware(until, dt.UTC)
    # Aware subtraction works on offsets, so even year 9999 at -05:00 cannot overflow
    # here; the horizon check below runs before anything converts it to UTC.
    ahead = until - now
    if ahead <= dt.timedelta(0):
        raise AlertActionRefused("until is in the past")
    if ahead > SILENCE_MAX:
        raise AlertActionRefused(f"until is more than {SILENCE_MAX.days} days ahead")
    return until.astimezone(dt.UTC)


def is_silenced(alert: Alert, now: dt.datetime | None = None) -> bool:
    return alert.silenced_until is not None and alert.silenced_until > (now or timezone.now())


def active_alerts(cluster: Any = None) -> list[Alert]:
    """Open (pending or firing) alerts, worst first, each marked with `.silenced`: the
    dashboard's strip (templates/alerts/_strip.html) and the alerts page."""
    alerts = Alert.objects.filter(state__in=ACTIVE_STATES).select_related(
        "cluster", "acknowledged_by", "silenced_by"
    )
    if cluster is not None:
        alerts = alerts.filter(cluster=cluster)
    now = timezone.now()
    marked = []
    for alert in alerts:
        alert.silenced = is_silenced(alert, now)
        marked.append(alert)
    return sorted(marked, key=_worst_first)


def recent_resolved(cluster: Any = None, limit: int = RECENT_RESOLVED) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(state="resolved").select_related("cluster", "acknowledged_by")
    if cluster is not None:
        alerts = alerts.filter(cluster=cluster)
    return alerts.order_by("-resolved_at", "-id")[:limit]


def _worst_first(alert: Alert) -> tuple:
    return (
        alert.state != "firing",
        alert.severity != "critical",
        -alert.pending_since.timestamp(),
    )


def _require_operator(user: Any) -> None:
    if not has_role(user, ACTING_ROLE):
        raise PermissionDenied(f"this needs the {ACTING_ROLE} role")


def _require_open(alert: Alert, action: str) -> None:
    if alert.state not in ACTIVE_STATES:
        raise AlertActionRefused(f"cannot {action} a resolved alert", status=409)


def _clean_comment(comment: str) -> str:
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX_CHARS:
        raise AlertActionRefused(f"comment is longer than {COMMENT_MAX_CHARS} characters")
    if "\x00" in comment:  # PostgreSQL text cannot hold NUL
        raise AlertActionRefused("comment contains a NUL character")
    return comment
