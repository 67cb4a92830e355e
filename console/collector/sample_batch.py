"""A tick's sample writes, gathered for one transaction (issue 16).

Each sample tick reads its cluster over HTTP on its own (SampleRead); SampleBatch waits
until every sample tick of the tick has read or dropped out, then writes them all in one
hop to Django's thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async

from console.clusters.daemon_client import DaemonClient
from console.clusters.models import Cluster
from console.collector.cadence import ClusterMemory
from console.collector.observe import Observation
from console.collector.samples import Totals


@dataclass
class SampleRead:
    """What a sample tick read over HTTP, and then what writing it did."""

    cluster: Cluster
    memory: ClusterMemory
    client: DaemonClient
    url: str
    obs: Observation
    commit: int
    due: bool  # the feed is to be mirrored
    after: int | None  # the cursor `page` was read from
    page: dict | None
    changed: bool = False  # an event was journaled
    saved: tuple[int, int] | None = None  # store_page's answer for `page`
    written: bool = False
    error: BaseException | None = None

    def keep(self) -> tuple[dict, Totals | None, datetime | None]:
        """What writing changes in the collector's memory, to put back if it fails."""
        return dict(self.memory.lags), self.memory.totals, self.memory.last_sample_at

    def restore(self, kept: tuple[dict, Totals | None, datetime | None]) -> None:
        lags, self.memory.totals, self.memory.last_sample_at = kept
        self.memory.lags.clear()
        self.memory.lags.update(lags)
        self.changed, self.saved = False, None


class SampleBatch:
    """The sample ticks of one tick hand their writes here; once every one of them has
    read (or dropped out to a full poll), all are written in one hop to Django's thread
    and one transaction (issue 16: ten clusters' BEGIN/COMMIT pairs and chart INSERTs
    each cost round trips to PostgreSQL every second). Reads are bounded by their
    timeouts, so a slow cluster delays the others' writes by at most those."""

    def __init__(self, write: Callable[[list[SampleRead]], None], expected: int) -> None:
        self.write = write
        self.waiting = expected
        self.reads: list[SampleRead] = []
        self.flushed = asyncio.Event()
        self.task: asyncio.Future | None = None

    def withdraw(self) -> None:
        """This cluster writes nothing here (it polls in full, or its read failed)."""
        self._arrive()

    async def submit(self, read: SampleRead) -> None:
        self.reads.append(read)
        self._arrive()
        await self.flushed.wait()

    def _arrive(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        try:
            if self.reads:
                await sync_to_async(self.write)(self.reads)
        except Exception as err:  # each read then raises it (written stays False)
            for read in self.reads:
                read.error = read.error or err
        finally:
            self.flushed.set()
