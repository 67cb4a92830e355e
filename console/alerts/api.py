"""REST for alerts, mounted by console/api.py at /api/alerts: list, read, ack, silence.

Reading needs any role; acknowledging and silencing need operator. Refusals are 4xx
with a one-line `detail` (unknown id 404, bad input 400, a resolved alert 409).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from console.accounts.auth import api_auth
from console.alerts import services
from console.alerts.models import ACTIVE_STATES, Alert
from console.clusters.lookup import get_cluster
from console.core.roles import require_role

router = Router(auth=api_auth, tags=["alerts"])


class AlertOut(Schema):
    id: int
    cluster: str
    rule: str
    severity: str
    state: str
    value: float | None
    threshold: float | None
    summary: str
    pending_since: dt.datetime
    fired_at: dt.datetime | None
    resolved_at: dt.datetime | None
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    ack_comment: str
    silenced_until: dt.datetime | None
    silenced_by: str | None
    silenced: bool


class AlertFilters(Schema):
    state: Literal["pending", "firing", "resolved", "active"] | None = Field(
        None, description="`active` means pending or firing"
    )
    cluster: str | None = Field(None, description="cluster name")
    limit: int = Field(100, ge=1, le=500)


class AckIn(Schema):
    comment: str = Field(
        "", description=f"what you know or are doing; at most {services.COMMENT_MAX_CHARS} chars"
    )


class SilenceIn(Schema):
    until: dt.datetime | None = Field(None, description="silence until this time (future)")
    minutes: int | None = Field(
        None, description=f"or for this many minutes (1..{services.SILENCE_MAX_MINUTES})"
    )


class Refusal(Schema):
    detail: str


ERRORS = {400: Refusal, 401: Refusal, 403: Refusal, 404: Refusal, 409: Refusal}


@router.get("", response={200: list[AlertOut], **ERRORS})
def list_alerts(request: HttpRequest, filters: Query[AlertFilters]) -> list[dict]:
    """Alerts, newest episode first; filter by state and cluster."""
    alerts = Alert.objects.select_related("cluster", "acknowledged_by", "silenced_by")
    if filters.state == "active":
        alerts = alerts.filter(state__in=ACTIVE_STATES)
    elif filters.state:
        alerts = alerts.filter(state=filters.state)
    if filters.cluster is not None:
        alerts = alerts.filter(cluster=get_cluster(filters.cluster))
    return [alert_out(alert) for alert in alerts.order_by("-pending_since", "-id")[: filters.limit]]


@router.get("/{alert_id}", response={200: AlertOut, **ERRORS})
def get_alert(request: HttpRequest, alert_id: int) -> dict:
    return alert_out(_alert(alert_id))


@router.post("/{alert_id}/ack", response={200: AlertOut, **ERRORS})
def ack_alert(request: HttpRequest, alert_id: int, body: AckIn) -> dict:
    """Acknowledge an open alert with a comment (operator). Journaled as alert.acknowledged."""
    user = require_role(request, services.ACTING_ROLE)
    alert = _alert(alert_id)
    return alert_out(_act(services.acknowledge, alert, user=user, comment=body.comment))


@router.post("/{alert_id}/silence", response={200: AlertOut, **ERRORS})
def silence_alert(request: HttpRequest, alert_id: int, body: SilenceIn) -> dict:
    """Silence an open alert until a time or for some minutes (operator). Journaled as
    alert.silenced."""
    user = require_role(request, services.ACTING_ROLE)
    alert = _alert(alert_id)
    return alert_out(
        _act(services.silence, alert, user=user, until=body.until, minutes=body.minutes)
    )


def alert_out(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "cluster": alert.cluster.name,
        "rule": alert.rule,
        "severity": alert.severity,
        "state": alert.state,
        "value": alert.value,
        "threshold": alert.threshold,
        "summary": alert.summary,
        "pending_since": alert.pending_since,
        "fired_at": alert.fired_at,
        "resolved_at": alert.resolved_at,
        "acknowledged_by": _username(alert.acknowledged_by),
        "acknowledged_at": alert.acknowledged_at,
        "ack_comment": alert.ack_comment,
        "silenced_until": alert.silenced_until,
        "silenced_by": _username(alert.silenced_by),
        "silenced": services.is_silenced(alert),
    }


def _act(action: Callable[..., Alert], alert: Alert, **kwargs: object) -> Alert:
    try:
        return action(alert, **kwargs)
    except services.AlertActionRefused as refusal:
        raise HttpError(refusal.status, refusal.message) from None
    except PermissionDenied as denied:
        raise HttpError(403, str(denied)) from None


def _alert(alert_id: int) -> Alert:
    try:
        return services.get_alert(alert_id)
    except services.AlertActionRefused as refusal:
        raise HttpError(refusal.status, refusal.message) from None


def _username(user: object | None) -> str | None:
    return user.get_username() if user is not None else None  # type: ignore[attr-defined]
