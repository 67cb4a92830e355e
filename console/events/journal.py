"""Append to the journal and wake whoever is watching.

Every observed change, alert transition and action goes through `append`. The
wake-up over the channel layer is only a hint: consumers always read the table
by id, so a lost wake-up delays an update but never loses it, and where the
layer cannot cross processes (the in-memory default) consumers poll instead.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from console.events.models import Event

log = logging.getLogger("console.events")

WAKE_GROUP = "events"


def append(kind: str, *, actor: str, cluster: Any = None, **payload: Any) -> Event:
    event = Event.objects.create(kind=kind, actor=actor, cluster=cluster, payload=payload)
    transaction.on_commit(lambda: wake(event.id))
    return event


def wake(event_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(WAKE_GROUP, {"type": "events.wake", "id": event_id})
    except Exception:  # a broken layer must not fail the write; pollers still see the row
        log.warning("channel layer wake-up failed", exc_info=True)


async def awake(event_id: int) -> None:
    """The same wake-up, from async code."""
    layer = get_channel_layer()
    if layer is not None:
        try:
            await layer.group_send(WAKE_GROUP, {"type": "events.wake", "id": event_id})
        except Exception:
            log.warning("channel layer wake-up failed", exc_info=True)
