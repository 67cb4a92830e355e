"""Channel administration (admins only, every change journaled) and test messages.
The page and the API both come through here, so both validate the same way."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from console.clusters.models import Cluster
from console.events import journal
from console.notifications import dispatch
from console.notifications.models import DEFAULT_ROUTES, ROUTES, Channel, Delivery

ADMIN_ROLE = "admin"
FIELDS = (
    "name",
    "kind",
    "routes",
    "secret_env",
    "url",
    "recipients",
    "quiet_start_hour",
    "quiet_end_hour",
    "enabled",
)


class ChannelError(Exception):
    """A refusal the caller can fix: one line, and the HTTP status it maps to."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _one_line(err: ValidationError) -> str:
    if hasattr(err, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in err.message_dict.items())
    return " ".join(err.messages)


def _check(channel: Channel) -> None:
    bad = [r for r in channel.routes if r not in ROUTES]
    if bad or not isinstance(channel.routes, list):
        raise ChannelError(f"routes: each must be one of {', '.join(ROUTES)}, not {bad}")
    for hour in (channel.quiet_start_hour, channel.quiet_end_hour):
        if hour is not None and not 0 <= hour <= 23:
            raise ChannelError("quiet hours: an hour is 0-23 (UTC)")
    if channel.kind in ("slack", "pagerduty") and not channel.secret_env:
        raise ChannelError(f"secret_env: a {channel.kind} channel reads its secret from one")
    if channel.kind == "email" and not channel.recipient_list:
        raise ChannelError("recipients: an e-mail channel needs at least one address")
    try:
        channel.full_clean(exclude=["cluster"])
    except ValidationError as err:
        raise ChannelError(_one_line(err)) from None


def save_channel(
    channel: Channel | None, data: dict[str, Any], cluster_name: str | None, *, actor: str
) -> Channel:
    created = channel is None
    channel = channel or Channel()
    for name in FIELDS:
        if name in data and data[name] is not None:
            setattr(channel, name, data[name])
    if created and not channel.routes:
        channel.routes = list(DEFAULT_ROUTES.get(channel.kind, ["info"]))
    if cluster_name is not None:
        cluster = Cluster.objects.filter(name=cluster_name).first() if cluster_name else None
        if cluster_name and cluster is None:
            raise ChannelError(f"no cluster named {cluster_name!r}", 404)
        channel.cluster = cluster
    taken = f"a channel named {channel.name!r} exists"
    if Channel.objects.filter(name=channel.name).exclude(pk=channel.pk).exists():
        raise ChannelError(taken, 409)
    _check(channel)
    try:
        with transaction.atomic():
            channel.save()
            _journal_saved(channel, created, actor)
    except IntegrityError:  # the same name added concurrently
        raise ChannelError(taken, 409) from None
    return channel


def _journal_saved(channel: Channel, created: bool, actor: str) -> None:
    journal.append(
        "notification.channel",
        actor=actor,
        channel=channel.name,
        action="created" if created else "updated",
        channel_kind=channel.kind,
        routes=channel.routes,
    )


def delete_channel(channel: Channel, *, actor: str) -> None:
    with transaction.atomic():
        name = channel.name
        channel.delete()
        journal.append(
            "notification.channel",
            actor=actor,
            channel=name,
            action="deleted",
            channel_kind=None,
            routes=None,
        )


def send_test(channel: Channel, *, actor: str) -> Delivery:
    """A test message to this channel, now (quiet hours do not apply: someone is waiting)."""
    with transaction.atomic():
        delivery = Delivery.objects.create(
            channel=channel,
            key=f"test:{uuid.uuid4().hex}",
            severity="info",
            payload={"test": True, "by": actor},
        )
        journal.append(
            "notification.test", actor=actor, channel=channel.name, delivery_id=delivery.pk
        )
        dispatch.enqueue_pending(delivery.created_at)
    return delivery
