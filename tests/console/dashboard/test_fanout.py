"""Many live feeds in one process share one journal reader (issue 16): each client still
gets every event after its cursor once, in order, including one that joins late."""

from __future__ import annotations

import asyncio

import pytest

from console.events.fanout import reader_for_this_loop
from tests.console.dashboard.test_websocket import (
    append,
    assert_nothing_more,
    close_thread_connections,  # noqa: F401 (autouse fixture)
    connect,
    receive_events,
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
