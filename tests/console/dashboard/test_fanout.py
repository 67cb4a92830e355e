"""Many live feeds in one process share one journal reader (issue 16): each client still
gets every event after its cursor once, in order, including one that joins late."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from console.clusters.models import Cluster
from console.events import journal, stream
from console.events.fanout import (
    MAX_FRAME_EVENTS,
    Item,
    Published,
    contiguous_runs,
    reader_for_this_loop,
    run_frame,
)
from console.events.models import Event
from tests.console.dashboard.test_websocket import (
    append,
    assert_nothing_more,
    close_thread_connections,  # noqa: F401 (autouse fixture)
    connect,
    make_cluster,
    receive_events,
    receive_frames,
    session_cookie,
    write_without_wakeup,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_thirty_clients_share_one_reader_and_each_gets_every_event_once_in_order() -> None:
    cookie = await session_cookie("viewer")
    clients = [await connect(cookie) for _ in range(30)]
    for client in clients:
        assert (await client.receive_json_from(timeout=5))["type"] == "snapshot"
    reader = reader_for_this_loop(0.5)
    assert len(reader.queues) == 30
    ids = []
    for i in range(40):
        # Half without a wake-up: the shared reader's poll must deliver those too.
        write = append if i % 2 else write_without_wakeup
        ids.append(await write("cluster.quorum"))
    received = await asyncio.gather(*(receive_events(c, len(ids)) for c in clients))
    assert all(got == ids for got in received)
    # A late client resuming from the middle reads the gap itself, then shares the feed.
    late = await connect(cookie, f"?after={ids[19]}")
    await late.receive_json_from(timeout=5)
    more = await append("cluster.quorum")
    assert await receive_events(late, 21) == [*ids[20:], more]
    await assert_nothing_more(late)
    for client in [*clients, late]:
        await client.disconnect()
    assert not reader.queues


# ---- batched frames ------------------------------------------------------------------
@sync_to_async
def write_burst(clusters: list[Cluster | None]) -> list[int]:
    """One row per entry of `clusters` in a single INSERT (no wake-up: the batch is read
    whole by the shared reader or its poll), then one more appended with a wake-up."""
    rows = Event.objects.bulk_create(
        [Event(kind="cluster.quorum", actor="system", cluster=cluster) for cluster in clusters]
    )
    ids = [row.id for row in rows]
    return [*ids, journal.append("cluster.quorum", actor="system", cluster=clusters[-1]).id]


async def test_a_burst_reaches_every_client_in_few_frames_each_event_once_in_order() -> None:
    cookie = await session_cookie("viewer")
    clients = [await connect(cookie) for _ in range(5)]
    for client in clients:
        assert (await client.receive_json_from(timeout=5))["type"] == "snapshot"
    ids = await write_burst([None] * 60)
    for frames in await asyncio.gather(*(receive_frames(c, len(ids)) for c in clients)):
        assert [i for frame in frames for i in frame] == ids
        # One INSERT, then one append: at most two reads of the shared reader.
        assert len(frames) <= 2 and max(map(len, frames)) >= 60
    for client in clients:
        await assert_nothing_more(client)
        await client.disconnect()


async def test_a_stream_gathered_over_the_window_shares_frames(settings) -> None:
    # A long window so the gathering, not the machine's speed, decides the frames.
    settings.EVENTS_BATCH_WINDOW_S = 0.5
    communicator = await connect(await session_cookie("viewer"))
    await communicator.receive_json_from(timeout=5)
    # After a quiet spell the first wake-up is read at once, alone...
    first = await append("cluster.quorum")
    assert await receive_frames(communicator, 1) == [[first]]
    # ...and what follows within the window waits for the next read, together.
    rest = [await append("cluster.quorum") for _ in range(5)]
    frames = await receive_frames(communicator, len(rest))
    assert [i for frame in frames for i in frame] == rest
    assert len(frames) < len(rest)
    await assert_nothing_more(communicator)
    await communicator.disconnect()


async def test_batches_over_the_read_limit_arrive_once_in_order_across_frame_boundaries() -> None:
    # 1,300 rows: the reader reads them in three batches (stream.BATCH is 500), and a
    # frame carries at most MAX_FRAME_EVENTS, so boundaries fall inside the burst.
    assert stream.BATCH < 1300 and MAX_FRAME_EVENTS < 1300
    cookie = await session_cookie("viewer")
    client = await connect(cookie)
    await client.receive_json_from(timeout=5)
    ids = await write_burst([None] * 1300)
    frames = await receive_frames(client, len(ids))
    assert [i for frame in frames for i in frame] == ids
    assert len(frames) >= 2 and max(map(len, frames)) <= MAX_FRAME_EVENTS
    # A late client from the middle catches up by itself (in batched frames), then
    # shares the feed: every event after its cursor once, in order.
    late = await connect(cookie, f"?after={ids[150]}")
    await late.receive_json_from(timeout=5)
    more = await write_burst([None] * 20)
    late_frames = await receive_frames(late, len(ids) - 151 + len(more))
    assert [i for frame in late_frames for i in frame] == [*ids[151:], *more]
    assert max(map(len, late_frames)) > 1
    assert await receive_events(client, len(more)) == more
    for communicator in (client, late):
        await assert_nothing_more(communicator)
        await communicator.disconnect()


async def test_a_cluster_feed_gets_only_its_own_events_out_of_a_mixed_batch() -> None:
    prod, staging = await make_cluster("prod"), await make_cluster("staging")
    cookie = await session_cookie("viewer")
    everything, only_prod = await connect(cookie), await connect(cookie, "?cluster=prod")
    for communicator in (everything, only_prod):
        await communicator.receive_json_from(timeout=5)
    ids = await write_burst([prod, staging, staging, prod, None, prod])
    mine = [ids[0], ids[3], ids[5], ids[6]]  # the wake-up row is prod's too
    assert await receive_events(everything, len(ids)) == ids
    assert await receive_events(only_prod, len(mine)) == mine
    for communicator in (everything, only_prod):
        await assert_nothing_more(communicator)
        await communicator.disconnect()


def published(start: int, items: list[tuple[int, int | None]]) -> Published:
    return Published(
        start,
        items[-1][0],
        tuple(Item(i, c, json.dumps({"id": i, "cluster": c})) for i, c in items),
    )


def test_a_frame_is_encoded_once_for_every_client_at_the_same_cursor_and_filter() -> None:
    one = published(10, [(11, 1), (12, 2), (13, 1)])
    two = published(13, [(14, 2), (15, 1)])
    run = [one, two]
    shared = run_frame(run, None, 10)
    assert run_frame(run, None, 10) is shared  # the cached text, not an equal copy
    assert [e["id"] for e in json.loads(shared)["events"]] == [11, 12, 13, 14, 15]
    assert [e["id"] for e in json.loads(run_frame(run, 1, 10))["events"]] == [11, 13, 15]
    # A client that caught up into the run gets only what follows its cursor...
    assert [e["id"] for e in json.loads(run_frame(run, None, 13))["events"]] == [14, 15]
    # ...a lone event keeps the single-event frame, and nothing new is no frame at all.
    assert json.loads(run_frame(run, 2, 13)) == {"type": "event", "event": {"id": 14, "cluster": 2}}
    assert run_frame(run, 2, 14) is None
    # A client still short of the run (its catch-up stopped at a hole) gets the run only.
    assert run_frame([two], None, 5) == run_frame([two], None, 13)


def test_queued_batches_are_split_where_one_does_not_continue_the_last() -> None:
    a, b, c = published(0, [(1, None)]), published(1, [(2, None)]), published(5, [(6, None)])
    assert list(contiguous_runs([a, b, c])) == [[a, b], [c]]
