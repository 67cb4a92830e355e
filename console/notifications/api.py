"""REST for notifications, mounted by console/api.py at /api/notifications.

Reading channels and deliveries needs any role; creating, changing, deleting and
testing channels needs admin. Refusals are 4xx with a one-line `detail`.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status

from console.accounts.auth import api_auth
from console.core.roles import actor_of, require_role
from console.notifications import services
from console.notifications.models import Channel, Delivery

router = Router(auth=api_auth, tags=["notifications"])
Route = Literal["critical", "warning", "info", "report"]


class ChannelOut(Schema):
    id: int
    name: str
    kind: str
    cluster: str | None
    routes: list[str]
    secret_env: str
    secret_set: bool  # whether the variable is set in this process (never its value)
    url: str
    recipients: list[str]
    quiet_start_hour: int | None
    quiet_end_hour: int | None
    enabled: bool
    failures_in_a_row: int


class ChannelIn(Schema):
    name: str = Field(..., max_length=63, pattern=r"^[-a-zA-Z0-9_]+$")
    kind: Literal["slack", "pagerduty", "email"]
    cluster: str | None = Field(None, description="only this cluster's messages; null: all")
    routes: list[Route] | None = Field(None, description="default: the kind's escalation line")
    secret_env: str = Field("", max_length=64)
    url: str = Field("", max_length=200)
    recipients: list[str] = Field(default_factory=list, max_length=20)
    quiet_start_hour: int | None = Field(None, ge=0, le=23)
    quiet_end_hour: int | None = Field(None, ge=0, le=23)
    enabled: bool = True


class DeliveryOut(Schema):
    id: int
    channel: str
    key: str
    severity: str
    status: str
    attempts: int
    last_error: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


def channel_out(c: Channel) -> ChannelOut:
    return ChannelOut(
        id=c.id,
        name=c.name,
        kind=c.kind,
        cluster=c.cluster.name if c.cluster_id else None,
        routes=c.routes,
        secret_env=c.secret_env,
        secret_set=bool(c.secret),
        url=c.url,
        recipients=c.recipient_list,
        quiet_start_hour=c.quiet_start_hour,
        quiet_end_hour=c.quiet_end_hour,
        enabled=c.enabled,
        failures_in_a_row=c.failures_in_a_row,
    )


def _channel(channel_id: int) -> Channel:
    channel = Channel.objects.select_related("cluster").filter(pk=channel_id).first()
    if channel is None:
        raise HttpError(404, f"no channel {channel_id}")
    return channel


def _save(request: HttpRequest, channel: Channel | None, body: ChannelIn) -> Channel:
    require_role(request, services.ADMIN_ROLE)
    data = body.dict(exclude={"cluster"})
    data["recipients"] = ",".join(body.recipients)
    try:
        return services.save_channel(channel, data, body.cluster or "", actor=actor_of(request))
    except services.ChannelError as err:
        raise HttpError(err.status, err.message) from None


@router.get("/channels", response=list[ChannelOut])
def list_channels(request: HttpRequest) -> list[ChannelOut]:
    return [channel_out(c) for c in Channel.objects.select_related("cluster")]


@router.post("/channels", response={201: ChannelOut})
def create_channel(request: HttpRequest, body: ChannelIn) -> Status[ChannelOut]:
    """Add a channel (admin). Secrets are never sent here: name the variable holding one."""
    return Status(201, channel_out(_save(request, None, body)))


@router.put("/channels/{channel_id}", response=ChannelOut)
def update_channel(request: HttpRequest, channel_id: int, body: ChannelIn) -> ChannelOut:
    return channel_out(_save(request, _channel(channel_id), body))


@router.delete("/channels/{channel_id}", response={204: None})
def delete_channel(request: HttpRequest, channel_id: int) -> Status[None]:
    require_role(request, services.ADMIN_ROLE)
    services.delete_channel(_channel(channel_id), actor=actor_of(request))
    return Status(204, None)


@router.post("/channels/{channel_id}/test", response={202: DeliveryOut})
def test_channel(request: HttpRequest, channel_id: int) -> Status[DeliveryOut]:
    """Queue a test message to this channel (admin); follow it in /deliveries."""
    require_role(request, services.ADMIN_ROLE)
    d = services.send_test(_channel(channel_id), actor=actor_of(request))
    return Status(202, delivery_out(d))


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        channel=d.channel.name,
        key=d.key,
        severity=d.severity,
        status=d.status,
        attempts=d.attempts,
        last_error=d.last_error,
        created_at=d.created_at,
        sent_at=d.sent_at,
    )


class DeliveryFilters(Schema):
    channel: str | None = Field(None, max_length=63)
    status: Literal["pending", "sending", "sent", "failed"] | None = None
    limit: int = Field(50, ge=1, le=500)


@router.get("/deliveries", response=list[DeliveryOut])
def list_deliveries(request: HttpRequest, filters: Query[DeliveryFilters]) -> list[DeliveryOut]:
    rows = Delivery.objects.select_related("channel")
    if filters.channel:
        rows = rows.filter(channel__name=filters.channel.replace("\x00", ""))
    if filters.status:
        rows = rows.filter(status=filters.status)
    return [delivery_out(d) for d in rows[: filters.limit]]
