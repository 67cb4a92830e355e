"""The live feed: `/ws/events/?after=<id>&cluster=<name>`.

On connect: a snapshot (the clusters' state and the journal head), then every event
with id > after, in id order, each exactly once. New events come from the process's
one journal reader (console/events/fanout.py), which is woken by `journal.append`
(channel layer group "events") or, because a wake-up is only a hint and the in-memory
layer cannot cross processes, polls the table; a client behind it reads the gap itself.

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
from console.events.fanout import (
    Published,
    catch_up,
    contiguous_runs,
    drain,
    reader_for_this_loop,
    run_frame,
)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_BAD_REQUEST = 4400


def poll_interval_s() -> float:
    """0.5 s with the in-memory layer (wake-ups from other processes never come);
    slower with a layer that crosses processes, where polling only covers lost wake-ups
    and holes in the id sequence."""
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    default = 0.5 if backend.endswith("InMemoryChannelLayer") else 2.0
    return float(getattr(settings, "EVENTS_POLL_INTERVAL_S", default))


def batch_window_s() -> float:
    """How long the shared reader gathers events into one batch (one frame per client)
    after a read: a few tens of ms add little to delivery but cut the frames of a
    100/s stream fivefold."""
    return float(getattr(settings, "EVENTS_BATCH_WINDOW_S", 0.05))


class EventsConsumer(AsyncJsonWebsocketConsumer):
    cursor: int
    cluster_id: int | None
    feeder: asyncio.Task | None = None
    queue: asyncio.Queue[Published] | None = None

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
        await self.accept()
        snapshot = await self._snapshot(cluster_name)
        if snapshot is None:
            await self.send_json({"type": "error", "error": f"unknown cluster {cluster_name!r}"})
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.cursor = int(after) if after else snapshot["last_id"]
        self.reader = reader_for_this_loop(poll_interval_s(), batch_window_s())
        # Subscribed before catching up: a batch read meanwhile waits in the queue.
        self.queue = await self.reader.subscribe()
        await self.send_json(snapshot)
        self.feeder = asyncio.create_task(self._feed(self.queue, self.reader.cursor or 0))

    async def disconnect(self, code: int) -> None:
        if self.feeder is not None:
            self.feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.feeder
        if self.queue is not None:
            await self.reader.unsubscribe(self.queue)

    async def _send_text(self, text: str) -> None:
        # Straight to the ASGI send: the consumer's own `send` only wraps this message.
        await self.base_send({"type": "websocket.send", "text": text})

    async def _feed(self, queue: asyncio.Queue[Published], reader_cursor: int) -> None:
        # What was written before the reader's position: read by this client alone.
        self.cursor = await catch_up(self.cursor, self.cluster_id, reader_cursor, self._send_text)
        while True:
            # Everything queued goes out as one frame: a client that fell behind
            # (a slow link, a busy process) catches up in few frames, not many.
            batches = drain(queue, await queue.get())
            for run in contiguous_runs(batches):
                if self.cursor < run[0].start:
                    self.cursor = await catch_up(
                        self.cursor, self.cluster_id, run[0].start, self._send_text
                    )
                text = run_frame(run, self.cluster_id, self.cursor)
                if text is not None:
                    await self._send_text(text)
                self.cursor = max(self.cursor, run[-1].cursor)

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
