"""Append to the journal and wake whoever is watching.

Every observed change, alert transition and action goes through `append`. The
wake-up over the channel layer is only a hint: consumers always read the table
by id, so a lost wake-up delays an update but never loses it, and where the
layer cannot cross processes (the in-memory default) consumers poll instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from console.events.models import Event

log = logging.getLogger("console.events")

WAKE_GROUP = "events"
WAKE_TIMEOUT_S = 1.0
WAKE_BACKOFF_S = 5.0
_quiet_until = 0.0  # monotonic time before which wake-ups are skipped


def append(kind: str, *, actor: str, cluster: Any = None, **payload: Any) -> Event:
    event = Event.objects.create(kind=kind, actor=actor, cluster=cluster, payload=payload)
    transaction.on_commit(lambda: wake(event.id))
    return event


def wake(event_id: int) -> None:
    async_to_sync(awake)(event_id)


async def awake(event_id: int) -> None:
    """The wake-up, bounded: a hung Redis (accepting, never answering) held every
    writer (the collector's tick included) forever; a down one logged a traceback per
    event. Either way the consumers' poll still delivers the row."""
    global _quiet_until
    layer = get_channel_layer()
    if layer is None or time.monotonic() < _quiet_until:
        return
    message = {"type": "events.wake", "id": event_id}
    try:
        await asyncio.wait_for(layer.group_send(WAKE_GROUP, message), WAKE_TIMEOUT_S)
    except Exception as err:  # a broken layer must not fail the write
        # Skip wake-ups for a while, so a burst of events does not pay the timeout each.
        _quiet_until = time.monotonic() + WAKE_BACKOFF_S
        detail = (str(err).splitlines() or [""])[0]
        reason = "timed out" if isinstance(err, TimeoutError) else f"{type(err).__name__}: {detail}"
        log.warning(
            "channel layer wake-up failed for event %d (%s); skipping wake-ups for %.0f s",
            event_id,
            reason,
            WAKE_BACKOFF_S,
        )
