"""Blocking watches that wake the collector as soon as a node's view changes (issue 16).

Polling once a second (or every 0.25 s after a change) cannot show a new leader within
half a second of a kill. So one `GET /watch` per node (docs/daemon-api.md) is held
open; when a node answers "changed", or its connection breaks (a killed node closes
its sockets at once), the collector's `wake` event is set and the next tick starts
now instead of at its interval, with a full poll of that cluster. While every member
of a cluster is watched, full polls are otherwise rarer (cadence.py); a missed or
failed watch costs freshness, never correctness, and polling remains the fallback (a daemon without `/watch` answers 404
and is simply not watched).
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.collector.observe import Target

log = logging.getLogger("console.collector")

HOLD_S = 25  # the daemon answers after this long even if nothing changed
RETRY_S = 1.0  # after a failed watch: a dead node is not asked in a tight loop


class Watches:
    def __init__(self, wake: asyncio.Event, hold_s: int = HOLD_S, retry_s: float = RETRY_S) -> None:
        self.wake = wake
        self.hold_s = hold_s
        self.retry_s = retry_s
        # Watches hold connections for up to hold_s: clients of their own keep them out
        # of the polling pools, one per cluster (httpcore scans all of a pool's waiting
        # requests and connections whenever one answers).
        self.pools: dict[int, httpx.AsyncClient] = {}
        self._tasks: dict[tuple[int, str], asyncio.Task] = {}
        self.held: set[str] = set()  # urls whose watch is open with a token
        # cluster pk -> url of the node whose last watch answer said it leads
        self.leaders: dict[int, str] = {}
        # clusters whose watch answered "changed" or broke since the collector last
        # looked (cadence.py: they get a full poll on the next tick)
        self.dirty: set[int] = set()

    def sync(self, cluster_pk: int, client: DaemonClient, targets: list[Target]) -> None:
        """Watch exactly these targets of this cluster (called every tick; cheap)."""
        wanted = {(cluster_pk, t.url) for t in targets}
        for key in [k for k in self._tasks if k[0] == cluster_pk and k not in wanted]:
            self._tasks.pop(key).cancel()
        for key in wanted - self._tasks.keys():
            task = asyncio.get_running_loop().create_task(self._hold(client, *key))
            self._tasks[key] = task

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        for pool in self.pools.values():
            await pool.aclose()
        self.pools.clear()

    def _pool(self, cluster_pk: int) -> httpx.AsyncClient:
        if cluster_pk not in self.pools:
            self.pools[cluster_pk] = httpx.AsyncClient(limits=httpx.Limits(max_connections=100))
        return self.pools[cluster_pk]

    def watching(self, cluster_pk: int, urls: list[str]) -> bool:
        """Whether a watch is held (open, with a token) on every one of these urls."""
        return bool(urls) and all(
            (cluster_pk, url) in self._tasks and url in self.held for url in urls
        )

    def take_dirty(self, cluster_pk: int) -> bool:
        """Whether this cluster changed since the last call (and forget it)."""
        if cluster_pk in self.dirty:
            self.dirty.discard(cluster_pk)
            return True
        return False

    def leader_url(self, cluster_pk: int) -> str | None:
        """Where the summary should be asked first: the node that last said it leads."""
        return self.leaders.get(cluster_pk)

    async def _hold(self, client: DaemonClient, cluster_pk: int, url: str) -> None:
        token: str | None = None
        while True:
            params = {"since": token, "timeout": self.hold_s} if token else {"timeout": 0}
            try:
                body = await client.aget(
                    url,
                    "/watch",
                    params=params,
                    client=self._pool(cluster_pk),
                    timeout_s=self.hold_s + 5,
                )
            except DaemonError as err:
                if err.status == 404:
                    log.info("%s has no /watch: polled only", url)
                    return
                if token is not None:
                    self.dirty.add(cluster_pk)
                    self.wake.set()  # it was answering and now is not: show that now
                token = None
                self.held.discard(url)
                if self.leaders.get(cluster_pk) == url:
                    del self.leaders[cluster_pk]
                await asyncio.sleep(self.retry_s)
                continue
            if not isinstance(body, dict) or not isinstance(body.get("token"), str):
                await asyncio.sleep(self.retry_s)
                continue
            node = body.get("node")
            if isinstance(node, dict) and node.get("role") == "leader":
                self.leaders[cluster_pk] = url
            elif self.leaders.get(cluster_pk) == url:
                del self.leaders[cluster_pk]
            if token is None:
                # A new hold: what changed before its token was handed out is told by
                # no watch, so the next tick polls this cluster in full (no wake-up).
                self.dirty.add(cluster_pk)
            elif body.get("changed"):
                self.dirty.add(cluster_pk)
                self.wake.set()
            token = body["token"]
            self.held.add(url)
