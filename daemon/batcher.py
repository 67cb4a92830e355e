"""Group execution records into one replicated call while the previous one is in flight.

Each Raft entry costs a pickle, an encryption and a message per follower on
pysyncobj's single tick thread; under concurrent load that, not the handlers, is
the ceiling. A record that arrives while the node is idle is submitted at once
(no added latency); records that arrive during a commit ride together in the
next one.
"""

from __future__ import annotations

import asyncio

from daemon.raft import NotCommitted, RaftNode

MAX_BATCH = 256


class RecordBatcher:
    def __init__(self, raft: RaftNode) -> None:
        self.raft = raft
        self.state = raft.state
        self._waiting: list[tuple[dict, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None

    async def commit(self, record: dict) -> None:
        """Return once `record` is applied on this node; raise NotCommitted if the
        batch it rode in could not be confirmed in time."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((record, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        # Shielded: a caller that goes away must not cancel its neighbours' commit.
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            records = [record for record, _ in batch]
            ids = [record["id"] for record in records]
            try:
                await self.raft.submit(
                    self.state.record_executions,
                    records,
                    confirmed=lambda ids=ids: all(
                        self.state.execution_by_id(i) is not None for i in ids
                    ),
                )
            except NotCommitted as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(NotCommitted(str(exc)))
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
