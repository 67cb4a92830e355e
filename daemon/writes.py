"""Writes through Raft that the API waits for: refused without quorum, idempotent by id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from daemon.errors import ApiError
from daemon.raft import NotCommitted, RaftNode
from daemon.state import ReplicatedState


def _retry_later(status: int, message: str, after_s: int) -> ApiError:
    exc = ApiError(status, message, retryAfter=after_s)
    exc.headers = {"Retry-After": str(after_s)}
    return exc


class Writes:
    def __init__(self, raft: RaftNode, state: ReplicatedState) -> None:
        self._raft = raft
        self._state = state

    def require_started(self) -> None:
        if not self._raft.is_ready():
            # A restarting node replays its journal and hears the leader before it
            # can write (or know what is missing): "starting", as /health/startup
            # says, not "no quorum" or "not found".
            raise _retry_later(503, "starting: this node is still loading the cluster log", 1)

    def require_quorum(self) -> None:
        """Refuse a write this node cannot take now, saying why (and when to retry)."""
        self.require_started()
        if self._raft.disk.full:
            free = self._raft.disk.free
            raise _retry_later(
                507,
                f"disk full: {free} bytes free on the data filesystem, under the "
                f"{self._raft.disk.reserve_bytes}-byte reserve; writes resume when space is freed",
                10,
            )
        if not self._raft.has_quorum:
            raise ApiError(503, "no quorum: this node cannot reach a majority of the cluster")

    async def commit(self, method: Callable[..., Any], *args: Any) -> None:
        """Apply `method(write_id, *args)` on a majority, or answer 503 with the write id.

        The fresh write id makes a retried or duplicated submission a no-op, and lets
        the wait end as soon as this node has applied it."""
        self.require_quorum()
        write_id = uuid.uuid4().hex
        try:
            await self._raft.submit(
                method, write_id, *args, confirmed=lambda: self._state.has_write(write_id)
            )
        except NotCommitted as exc:
            raise ApiError(503, f"not committed: {exc}", writeId=write_id) from None
