"""The live feed at /ws/events/: who may connect, what it sends, and resuming after a drop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections
from django.test import Client

from console.asgi import application
from console.clusters.models import Cluster, Node
from console.events import journal
from console.events.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture(autouse=True)
async def close_thread_connections() -> AsyncIterator[None]:
    # sync_to_async runs ORM calls on a worker thread whose connection would otherwise
    # outlive the test and block PostgreSQL from dropping the test database.
    yield
    await sync_to_async(connections.close_all)()


@sync_to_async
def session_cookie(role: str) -> bytes:
    user = get_user_model().objects.create_user(f"{role}-user", password="x" * 12)
    # Transactional tests flush the groups the migration made, so make sure they exist.
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@sync_to_async
def make_cluster(name: str = "prod") -> Cluster:
    cluster = Cluster.objects.create(name=name, leader_name="n0", cluster_size=1, has_quorum=True)
    Node.objects.create(cluster=cluster, name="n0", http_url="http://127.0.0.1:1", role="leader")
    return cluster


@sync_to_async
def append(kind: str, cluster: Cluster | None = None, **payload: Any) -> int:
    return journal.append(kind, actor="system", cluster=cluster, **payload).id


@sync_to_async
def write_without_wakeup(kind: str, cluster: Cluster | None = None) -> int:
    return Event.objects.create(kind=kind, actor="system", cluster=cluster).id


async def connect(cookie: bytes | None, query: str = "") -> WebsocketCommunicator:
    headers = [ORIGIN] + ([(b"cookie", cookie)] if cookie else [])
    communicator = WebsocketCommunicator(application, f"/ws/events/{query}", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


def events_in(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of one frame: `event` carries one, `events` several (a batch)."""
    if message["type"] == "events":
        assert len(message["events"]) > 1, message  # a lone event has its own frame type
        return message["events"]
    assert message["type"] == "event", message
    return [message["event"]]


async def receive_frames(communicator: WebsocketCommunicator, count: int) -> list[list[int]]:
    """Frames until `count` events came, as the ids each frame carried (a frame that
    brings more than asked for shows as extra ids, which the callers' equality catches)."""
    frames: list[list[int]] = []
    while sum(map(len, frames)) < count:
        message = await communicator.receive_json_from(timeout=5)
        frames.append([event["id"] for event in events_in(message)])
    return frames


async def receive_events(communicator: WebsocketCommunicator, count: int) -> list[int]:
    return [i for frame in await receive_frames(communicator, count) for i in frame]


async def assert_nothing_more(communicator: WebsocketCommunicator) -> None:
    # Two poll periods of silence: a duplicate would have been sent by then.
    assert await communicator.receive_nothing(timeout=1.2)


async def test_an_anonymous_connection_is_refused_with_4401() -> None:
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=[ORIGIN])
    connected, code = await communicator.connect(timeout=5)
    assert (connected, code) == (False, 4401)


async def test_a_foreign_origin_is_refused() -> None:
    cookie = await session_cookie("viewer")
    headers = [(b"origin", b"http://evil.example"), (b"cookie", cookie)]
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_a_viewer_gets_a_snapshot_then_the_events_after_its_id() -> None:
    cluster = await make_cluster()
    first = await append("leader.changed", cluster, **{"from": None, "to": "n0", "term": 1})
    second = await append("node.unreachable", cluster, node="n0", last_seen=None)
    communicator = await connect(await session_cookie("viewer"), f"?after={first - 1}")

    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    assert snapshot["last_id"] == second
    assert snapshot["clusters"][0]["leader"] == "n0"
    assert await receive_events(communicator, 2) == [first, second]
    await assert_nothing_more(communicator)
    await communicator.disconnect()


async def test_without_after_only_new_events_are_sent() -> None:
    await append("token.created", token_id=1, name="old")
    communicator = await connect(await session_cookie("viewer"))
    snapshot = await communicator.receive_json_from(timeout=5)
    new = await append("token.created", token_id=2, name="new")
    assert await receive_events(communicator, 1) == [new]
    assert new == snapshot["last_id"] + 1
    await communicator.disconnect()


async def test_a_reconnecting_client_gets_exactly_the_events_it_missed() -> None:
    cluster = await make_cluster()
    communicator = await connect(await session_cookie("viewer"), "?cluster=prod")
    await communicator.receive_json_from(timeout=5)
    seen = await receive_events(communicator, 0)
    seen += [await append("lag.high", cluster, node="n0", lag_ms=50.0, threshold=10.0)]
    assert await receive_events(communicator, 1) == seen[-1:]
    await communicator.disconnect()

    missed = [await append("lag.normal", cluster, node="n0", lag_ms=1.0) for _ in range(5)]
    resumed = await connect(await session_cookie("operator"), f"?cluster=prod&after={seen[-1]}")
    assert (await resumed.receive_json_from(timeout=5))["type"] == "snapshot"
    assert await receive_events(resumed, 5) == missed
    later = await append("node.recovered", cluster, node="n0")
    assert await receive_events(resumed, 1) == [later]
    await assert_nothing_more(resumed)
    await resumed.disconnect()


async def test_a_cluster_feed_leaves_out_other_clusters_events() -> None:
    prod, staging = await make_cluster("prod"), await make_cluster("staging")
    communicator = await connect(await session_cookie("viewer"), "?cluster=prod")
    await communicator.receive_json_from(timeout=5)
    await append("node.recovered", staging, node="n0")
    mine = await append("node.recovered", prod, node="n0")
    assert await receive_events(communicator, 1) == [mine]
    await communicator.disconnect()


async def test_an_event_written_by_another_process_arrives_by_polling() -> None:
    # No wake-up at all (as with the in-memory layer and a collector in its own process):
    # the poll of the table must still deliver the row.
    communicator = await connect(await session_cookie("viewer"))
    await communicator.receive_json_from(timeout=5)
    quiet = await write_without_wakeup("cluster.quorum")
    assert await receive_events(communicator, 1) == [quiet]
    await communicator.disconnect()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
async def test_with_redis_a_wakeup_delivers_an_event_before_the_next_poll(settings) -> None:
    settings.EVENTS_POLL_INTERVAL_S = 60  # so only the Redis wake-up can deliver it in time
    communicator = await connect(await session_cookie("viewer"))
    await communicator.receive_json_from(timeout=5)
    await asyncio.sleep(0)  # let the consumer's poller start its long wait
    started = asyncio.get_running_loop().time()
    woken = await append("cluster.quorum", has_quorum=True)
    assert await receive_events(communicator, 1) == [woken]
    assert asyncio.get_running_loop().time() - started < 5
    await communicator.disconnect()


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_an_action_message_is_refused_with_an_error_frame(role: str) -> None:
    before = await sync_to_async(Event.objects.count)()
    communicator = await connect(await session_cookie(role))
    await communicator.receive_json_from(timeout=5)
    await communicator.send_json_to({"type": "action", "action": "drain", "node": "n0"})
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["type"] == "error"
    assert ("viewers cannot" in reply["error"]) == (role == "viewer")
    assert await sync_to_async(Event.objects.count)() == before
    await communicator.disconnect()


async def test_an_unknown_cluster_is_an_error_not_a_silent_feed() -> None:
    communicator = await connect(await session_cookie("viewer"), "?cluster=nope")
    reply = await communicator.receive_json_from(timeout=5)
    assert reply == {"type": "error", "error": "unknown cluster 'nope'"}
    assert (await communicator.receive_output(timeout=5))["code"] == 4400
