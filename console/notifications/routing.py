"""Who gets a message: enabled channels of the message's cluster (or of every cluster)
whose routes hold its severity; and when: non-critical messages wait out a channel's
quiet hours (critical ones never wait)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from console.notifications.models import Channel


def channels_for(severity: str, cluster_id: int | None) -> list[Channel]:
    channels: QuerySet[Channel] = Channel.objects.filter(enabled=True)
    if cluster_id is not None:
        channels = channels.filter(Q(cluster__isnull=True) | Q(cluster_id=cluster_id))
    # JSON "contains" is not portable to SQLite: the list is short, filter here.
    return [c for c in channels if severity in (c.routes or [])]


def in_quiet_hours(channel: Channel, now: datetime) -> bool:
    start, end = channel.quiet_start_hour, channel.quiet_end_hour
    if start is None or end is None or start == end:
        return False
    hour = now.hour
    return start <= hour < end if start < end else (hour >= start or hour < end)


def not_before(channel: Channel, severity: str, now: datetime) -> datetime | None:
    """The end of the channel's quiet hours if a non-critical message arrives in them."""
    if severity == "critical" or not in_quiet_hours(channel, now):
        return None
    end = now.replace(hour=channel.quiet_end_hour or 0, minute=0, second=0, microsecond=0)
    return end if end > now else end + timedelta(days=1)
