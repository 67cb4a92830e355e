"""One journal reader per process, shared by every live feed in it (issue 16).

Before, each websocket joined the wake-up group and read the table itself: 500
clients meant 500 channel-layer messages and 500 queries per event. Now one reader
per event loop (a daphne process has one) joins the group once, reads the journal
in order with the same hole rule as before (`stream.read_after`), encodes each event
once, and hands every batch to each subscriber's queue. A subscriber that is behind
the batch (it connected with an old `after`, or its queue was dropped for being too
long) first reads the table itself up to the batch's start, so each client still
gets every event after its cursor exactly once, in id order.

Frames carry batches. Per frame, channels, daphne, autobahn and Twisted cost far more
than the bytes do: at 500 clients and 100 events/s one frame per event was 50,000 frames
a second, which daphne and its clients could not keep up with. So the reader reads at
most once per `window_s` (a wake-up after a quiet spell still reads at once), a client
sends everything it has pending as one frame, `{"type": "events", "events": [...]}`
(a single event keeps `{"type": "event", "event": ...}`), and each frame's text is
encoded once for every client with the same cluster filter and cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from console.events import stream
from console.events.journal import WAKE_GROUP

log = logging.getLogger("console.events")

REJOIN_S = 600.0  # group membership expires in channels_redis (a day): renew it well before
MAX_QUEUE = 1000  # batches a slow client may fall behind before it re-reads the table itself
MAX_FRAME_EVENTS = 1000  # events one frame may carry (a client far behind sends several)


@dataclass(frozen=True)
class Item:
    id: int
    cluster_id: int | None
    json: str  # the event as JSON, encoded once for every client


@dataclass(frozen=True)
class Published:
    start: int  # the cursor this batch continues from
    cursor: int  # every id <= cursor is decided
    items: tuple[Item, ...]
    # Frames that end with this batch, by (cluster filter, cursor they continue from):
    # clients in step share one text. It lives as long as the batch is queued somewhere.
    texts: dict[tuple[int | None, int], str | None] = field(default_factory=dict, compare=False)


def frame_text(events_json: Sequence[str]) -> str | None:
    """One websocket frame for these events (already JSON), or None for no event."""
    if not events_json:
        return None
    if len(events_json) == 1:
        return '{"type": "event", "event": ' + events_json[0] + "}"
    return '{"type": "events", "events": [' + ", ".join(events_json) + "]}"


def contiguous_runs(batches: Sequence[Published]) -> Iterator[list[Published]]:
    """Split queued batches where one does not continue from the one before (never seen:
    a dropped queue is emptied whole; kept so a frame never spans a gap)."""
    run: list[Published] = []
    for published in batches:
        if run and published.start != run[-1].cursor:
            yield run
            run = []
        run.append(published)
    if run:
        yield run


def run_frame(run: Sequence[Published], cluster_id: int | None, cursor: int) -> str | None:
    """The frame for a client at `cursor` with this filter: every event of the
    contiguous `run` after `cursor`, in id order. Which events those are depends only
    on the last batch, the filter and max(cursor, the run's start), so the text is
    cached on the last batch under that key and shared."""
    key = (cluster_id, max(cursor, run[0].start))
    texts = run[-1].texts
    if key not in texts:
        after = key[1]
        texts[key] = frame_text(
            [
                item.json
                for published in run
                for item in published.items
                if item.id > after and cluster_id in (None, item.cluster_id)
            ]
        )
    return texts[key]


def drain(queue: asyncio.Queue[Published], first: Published) -> list[Published]:
    """`first` and whatever else is already queued, up to MAX_FRAME_EVENTS events."""
    batches = [first]
    count = len(first.items)
    while count < MAX_FRAME_EVENTS and not queue.empty():
        batches.append(queue.get_nowait())
        count += len(batches[-1].items)
    return batches


class Reader:
    def __init__(self, poll_interval_s: float, window_s: float = 0.0) -> None:
        self.poll_interval_s = poll_interval_s
        self.window_s = window_s
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
        last_read = -self.window_s
        while True:
            # At most one read per window: the events of a burst or of a steady stream
            # that arrive meanwhile share the next batch (and so one frame per client).
            # A wake-up after a quiet spell reads at once.
            pause = last_read + self.window_s - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            self._kick.clear()  # a wake-up from now on may be for a row this read misses
            last_read = time.monotonic()
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
            if retry_at is not None and time.monotonic() >= retry_at:
                retry_at = None

    async def _read_all(self) -> bool:
        while True:
            assert self.cursor is not None
            start = self.cursor
            batch = await database_sync_to_async(stream.read_after)(start, None)
            if batch.cursor != start:
                items = tuple(
                    Item(e.id, e.cluster_id, json.dumps(e.as_dict())) for e in batch.events
                )
                self.cursor = batch.cursor
                self._publish(Published(start, batch.cursor, items))
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


def reader_for_this_loop(poll_interval_s: float, window_s: float = 0.0) -> Reader:
    loop = asyncio.get_running_loop()
    reader = _readers.get(loop)
    if reader is None:
        reader = _readers[loop] = Reader(poll_interval_s, window_s)
    return reader


async def catch_up(
    cursor: int,
    cluster_id: int | None,
    until: int,
    send: Callable[[str], Awaitable[None]],
) -> int:
    """Read the table from `cursor` (as one client) until `until` is passed or a hole
    holds; one frame per read; returns the new cursor."""
    while cursor < until:
        batch = await database_sync_to_async(stream.read_after)(cursor, cluster_id)
        text = frame_text(_encoded(batch.events))
        if text is not None:
            await send(text)
        if batch.cursor == cursor:
            break
        cursor = batch.cursor
        if batch.held:
            break
    return cursor


def _encoded(events: Iterable) -> list[str]:
    return [json.dumps(event.as_dict()) for event in events]
