"""The live feed: `/ws/events/?after=<id>&cluster=<name>`.

On connect: a snapshot (the clusters' state and the journal head), then every event
with id > after, in id order, each exactly once. New events arrive on a wake-up from
`journal.append` (channel layer group "events") or, because a wake-up is only a hint
and the in-memory layer cannot cross processes, on a poll of the table.

The socket is read-only: clients cannot trigger anything through it, so any action
message gets an error frame (viewers are told their role cannot act at all).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from console.clusters.models import Cluster
from console.clusters.overview import summary
from console.core.roles import has_role
from console.events import stream
from console.events.journal import WAKE_GROUP

CLOSE_UNAUTHENTICATED = 4401
CLOSE_BAD_REQUEST = 4400


def poll_interval_s() -> float:
    """0.5 s with the in-memory layer (wake-ups from other processes never come);
    slower with a layer that crosses processes, where polling only covers lost wake-ups
    and holes in the id sequence."""
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    default = 0.5 if backend.endswith("InMemoryChannelLayer") else 2.0
    return float(getattr(settings, "EVENTS_POLL_INTERVAL_S", default))


class EventsConsumer(AsyncJsonWebsocketConsumer):
    cursor: int
    cluster_id: int | None
    poller: asyncio.Task | None = None
    retry: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        after = query.get("after", [""])[0]
        cluster_name = query.get("cluster", [""])[0]
        if after and not after.isdigit():
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.read_lock = asyncio.Lock()
        await self.channel_layer.group_add(WAKE_GROUP, self.channel_name)
        await self.accept()
        snapshot = await self._snapshot(cluster_name)
        if snapshot is None:
            await self.send_json({"type": "error", "error": f"unknown cluster {cluster_name!r}"})
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.cursor = int(after) if after else snapshot["last_id"]
        await self.send_json(snapshot)
        await self.send_new_events()
        self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code: int) -> None:
        for task in (self.poller, self.retry):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.channel_layer.group_discard(WAKE_GROUP, self.channel_name)

    async def events_wake(self, message: dict[str, Any]) -> None:
        # The message's id is not trusted: the table says what is new.
        await self.send_new_events()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
            return
        user = self.scope["user"]
        if not await database_sync_to_async(has_role)(user, "operator"):
            error = "viewers cannot trigger actions"
        else:
            error = "this socket is read-only: use the buttons or the REST API to act"
        await self.send_json({"type": "error", "error": error})

    async def send_new_events(self) -> None:
        async with self.read_lock:  # a wake-up and a poll must not send the same rows twice
            while True:
                batch = await database_sync_to_async(stream.read_after)(
                    self.cursor, self.cluster_id
                )
                moved = batch.cursor != self.cursor
                self.cursor = batch.cursor
                for event in batch.events:
                    await self.send_json({"type": "event", "event": event.as_dict()})
                if batch.held and self.retry is None:
                    self.retry = asyncio.create_task(self._read_after_grace())
                if not moved:
                    return

    async def _read_after_grace(self) -> None:
        # Without this a hole would hold events until the next poll (slow with Redis).
        await asyncio.sleep(stream.GAP_GRACE_S + 0.1)
        self.retry = None
        await self.send_new_events()

    async def _poll(self) -> None:
        interval = poll_interval_s()
        while True:
            await asyncio.sleep(interval)
            await self.send_new_events()

    @database_sync_to_async
    def _snapshot(self, cluster_name: str) -> dict[str, Any] | None:
        clusters = Cluster.objects.all()
        if cluster_name:
            clusters = clusters.filter(name=cluster_name)
            if not clusters:
                return None
        self.cluster_id = clusters[0].id if cluster_name else None
        return {
            "type": "snapshot",
            "last_id": stream.head_id(),
            "clusters": [summary(cluster) for cluster in clusters],
        }
