"""A node asks its peers for their view over kept-alive connections (daemon/peers.py on
daemon/keepalive.py): a live peer answers with its view, and a hung or closed one is
reported unreachable within the peer timeout, never as an error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from daemon.localcluster import free_port
from daemon.peers import PEER_TIMEOUT_S, Peers
from tests.cluster_harness import RAFT_PASSWORD, Cluster
from tests.loopback import silent_server

T = TypeVar("T")


def with_peers(call: Callable[[Peers], Awaitable[T]]) -> T:
    async def run() -> T:
        peers = Peers(directory=None, raft_password=RAFT_PASSWORD)  # type: ignore[arg-type]
        peers.open()
        try:
            return await call(peers)
        finally:
            await peers.close()

    return asyncio.run(run())


def test_a_live_peer_answers_with_its_view_again_and_again(cluster: Cluster) -> None:
    node = cluster.nodes[0]

    async def ask(peers: Peers) -> list[dict | None]:
        return [await peers.node_view(node.url) for _ in range(5)]

    views = with_peers(ask)

    assert [v and v["name"] for v in views] == [node.name] * 5


def test_a_hung_peer_is_unreachable_within_the_peer_timeout() -> None:
    with silent_server() as port:

        async def ask(peers: Peers) -> tuple[dict | None, float]:
            started = time.monotonic()
            view = await peers.node_view(f"http://127.0.0.1:{port}")
            return view, time.monotonic() - started

        view, took = with_peers(ask)

    assert view is None
    assert PEER_TIMEOUT_S * 0.8 <= took < PEER_TIMEOUT_S + 0.5


def test_a_closed_port_is_unreachable_at_once() -> None:
    async def ask(peers: Peers) -> tuple[dict | None, float]:
        started = time.monotonic()
        view = await peers.node_view(f"http://127.0.0.1:{free_port()}")
        return view, time.monotonic() - started

    view, took = with_peers(ask)

    assert view is None and took < PEER_TIMEOUT_S
