"""One journal reader per process, shared by every live feed in it (issue 16).

Before, each websocket joined the wake-up group and read the table itself: 500
clients meant 500 channel-layer messages and 500 queries per event. Now one reader
per event loop (a daphne process has one) joins the group once, reads the journal
in order with the same hole rule as before (`stream.read_after`), encodes each event
once, and hands every batch to each subscriber's queue. A subscriber that is behind
the batch (it connected with an old `after`, or its queue was dropped for being too
long) first reads the table itself up to the batch's start, so each client still
gets every event after its cursor exactly once, in id order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from console.events import stream
from console.events.journal import WAKE_GROUP

log = logging.getLogger("console.events")

REJOIN_S = 600.0  # group membership expires in channels_redis (a day): renew it well before
MAX_QUEUE = 1000  # batches a slow client may fall behind before it re-reads the table itself


@dataclass(frozen=True)
class Frame:
    id: int
    cluster_id: int | None
    text: str  # the websocket frame, encoded once for every client


@dataclass(frozen=True)
class Published:
    start: int  # the cursor this batch continues from
    cursor: int  # every id <= cursor is decided
    frames: tuple[Frame, ...]


class Reader:
    def __init__(self, poll_interval_s: float) -> None:
        self.poll_interval_s = poll_interval_s
        self.cursor: int | None = None
        self.queues: set[asyncio.Queue[Published]] = set()
        self._kick = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listener: asyncio.Task | None = None

    # ---- subscribers ---------------------------------------------------------
    async def subscribe(self) -> asyncio.Queue[Published]:
        if self.cursor is None:
            self.cursor = await database_sync_to_async(stream.head_id)()
        queue: asyncio.Queue[Published] = asyncio.Queue()
        self.queues.add(queue)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
            self._listener = asyncio.create_task(self._listen())
        return queue

    async def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.queues.discard(queue)
        if not self.queues:
            await self.stop()

    async def stop(self) -> None:
        for task in (self._task, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._listener = None
        self.cursor = None

    def kick(self) -> None:
        self._kick.set()

    # ---- the one reader --------------------------------------------------------
    async def _run(self) -> None:
        retry_at: float | None = None
        while True:
            try:
                held = await self._read_all()
            except Exception:  # a database hiccup must not end every client's feed
                log.exception("events reader: reading the journal failed; retrying")
                held = False
            if held and retry_at is None:
                retry_at = time.monotonic() + stream.GAP_GRACE_S + 0.1
            wait_s = self.poll_interval_s
            if retry_at is not None:
                wait_s = max(0.0, min(wait_s, retry_at - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), wait_s)
            self._kick.clear()
            if retry_at is not None and time.monotonic() >= retry_at:
                retry_at = None

    async def _read_all(self) -> bool:
        while True:
            assert self.cursor is not None
            start = self.cursor
            batch = await database_sync_to_async(stream.read_after)(start, None)
            if batch.cursor != start:
                frames = tuple(
                    Frame(e.id, e.cluster_id, json.dumps({"type": "event", "event": e.as_dict()}))
                    for e in batch.events
                )
                self.cursor = batch.cursor
                self._publish(Published(start, batch.cursor, frames))
            if batch.cursor == start or batch.held:
                return batch.held

    def _publish(self, published: Published) -> None:
        for queue in list(self.queues):
            if queue.qsize() >= MAX_QUEUE:
                # Too slow to keep up: its queue is dropped, and as the next batch
                # starts past its cursor it re-reads the gap from the table itself.
                while not queue.empty():
                    queue.get_nowait()
            queue.put_nowait(published)

    async def _listen(self) -> None:
        """Wake-ups from `journal.append` (in any process, with Redis) kick the reader."""
        layer = get_channel_layer()
        if layer is None:
            return
        channel = await layer.new_channel()
        joined_at = 0.0
        try:
            while True:
                if time.monotonic() - joined_at > REJOIN_S:
                    await layer.group_add(WAKE_GROUP, channel)
                    joined_at = time.monotonic()
                try:
                    await asyncio.wait_for(layer.receive(channel), REJOIN_S)
                except TimeoutError:
                    continue
                self.kick()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(layer.group_discard(WAKE_GROUP, channel))
            raise
        except Exception as err:  # a broken layer: the poll still delivers
            log.warning("events reader: channel layer failed (%s); polling only", err)


_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Reader] = weakref.WeakKeyDictionary()


def reader_for_this_loop(poll_interval_s: float) -> Reader:
    loop = asyncio.get_running_loop()
    reader = _readers.get(loop)
    if reader is None:
        reader = _readers[loop] = Reader(poll_interval_s)
    return reader


async def catch_up(
    cursor: int,
    cluster_id: int | None,
    until: int,
    send: Callable[[str], Awaitable[None]],
) -> int:
    """Read the table from `cursor` (as one client) until `until` is passed or a hole
    holds; returns the new cursor."""
    while cursor < until:
        batch = await database_sync_to_async(stream.read_after)(cursor, cluster_id)
        for event in batch.events:
            await send(json.dumps({"type": "event", "event": event.as_dict()}))
        if batch.cursor == cursor:
            break
        cursor = batch.cursor
        if batch.held:
            break
    return cursor
