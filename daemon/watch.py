"""A blocking watch on what a dashboard shows of this node (issue 16).

``GET /watch?since=<token>&timeout=<s>`` answers at once when ``since`` is not the
current token, else when the node's role, term, leader, quorum, drain flag or set of
connected peers changes, else after ``timeout`` seconds (as Consul's blocking
queries): a collector that holds one open per node learns of a leader change as it
happens instead of at its next poll. Polling stays the fallback; the answer is the
same ``/health/node`` body plus the token to send next time.

The change is noticed on pysyncobj's tick thread (a tuple compare each tick, already
running at 100 Hz), and handed to the event loop only when something changed, so an
idle node with watchers open costs no extra wake-ups. The token carries a per-process
id, so a restarted node's counter never looks like an old one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daemon.errors import ApiError

if TYPE_CHECKING:
    from daemon.node import DaemonNode
    from daemon.raft import RaftNode

MAX_TIMEOUT_S = 60


class Watch:
    def __init__(self, raft: RaftNode, draining: Any) -> None:
        self._raft = raft
        # A callable read on the tick thread (a bool attribute read is atomic).
        self._draining = draining
        self._boot = os.urandom(4).hex()
        self._version = 0
        self._fingerprint: tuple | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._closed = False

    @property
    def token(self) -> str:
        return f"{self._boot}-{self._version}"

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._changed = asyncio.Event()
        self._raft.obj.addOnTickCallback(self._on_tick)

    def close(self) -> None:
        """Answer every open watch now (shutdown must not wait out their timeouts)."""
        self._closed = True
        if self._changed is not None:
            self._changed.set()

    # ---- tick thread -----------------------------------------------------
    def _on_tick(self) -> None:
        obj = self._raft.obj
        leader = obj._SyncObj__raftLeader
        fingerprint = (
            obj._SyncObj__raftState,
            obj.raftCurrentTerm,
            None if leader is None else leader.address,
            self._raft.has_quorum,
            bool(self._draining()),
            tuple(n.address for n in obj._SyncObj__otherNodes if obj.isNodeConnected(n)),
        )
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._bump)

    # ---- event loop ------------------------------------------------------
    def _bump(self) -> None:
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        if changed is not None:
            changed.set()

    async def wait(self, since: str | None, timeout_s: float) -> bool:
        """True when the token moved past ``since`` (at once if it already has)."""
        if since != self.token or self._closed or self._changed is None:
            return since != self.token
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return since != self.token


def watch_endpoint(node: DaemonNode) -> Callable[[Request], Awaitable[Response]]:
    """GET /watch?since=<token>&timeout=<s>: the /health/node body once it changed."""

    async def endpoint(request: Request) -> Response:
        since = request.query_params.get("since") or None
        if since is not None and len(since) > 64:
            raise ApiError(400, "query parameter 'since' is too long")
        raw = request.query_params.get("timeout") or "25"
        try:
            timeout_s = int(raw)
        except ValueError:
            raise ApiError(400, "query parameter 'timeout' must be an integer") from None
        if not 0 <= timeout_s <= MAX_TIMEOUT_S:
            raise ApiError(400, f"query parameter 'timeout' must be between 0 and {MAX_TIMEOUT_S}")
        changed = await node.watch.wait(since, timeout_s)
        body = {"token": node.watch.token, "changed": changed, "node": node.reporting.node_view()}
        return JSONResponse(body)

    return endpoint
