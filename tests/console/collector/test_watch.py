"""The collector holds GET /watch open on every node: a leader kill starts a tick at once
instead of at the poll interval (issue 16)."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from console.clusters.models import Cluster
from console.collector import collector as collector_module
from tests.cluster_harness import Cluster as DaemonCluster
from tests.console.collector.support import make_collector

pytestmark = pytest.mark.cluster


async def _until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.django_db
def test_a_leader_kill_reaches_the_database_long_before_the_poll_interval(
    daemons: DaemonCluster, watched: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop closes stale connections between ticks; here that is the test's own,
    # inside its transaction.
    monkeypatch.setattr(collector_module, "close_old_connections", lambda: None)
    # Polling alone would not look again for 30 s: only a watch can bring the change.
    collector = make_collector(interval_s=30, fast_interval_s=30)
    old = daemons.leader()

    async def leader_name() -> str | None:
        return await sync_to_async(lambda: Cluster.objects.get(pk=watched.pk).leader_name)()

    async def scenario() -> float:
        stop = asyncio.Event()
        async with collector:
            runner = asyncio.create_task(collector.run(stop))
            try:

                async def watching() -> bool:
                    held = collector.watches.held if collector.watches else set()
                    return await leader_name() == old.name and len(held) == 3

                await _until(watching, 20, "the first tick and a watch on every node")
                killed_at = time.monotonic()
                daemons.kill(old)

                async def moved() -> bool:
                    return (await leader_name()) not in (None, old.name)

                await _until(moved, 20, "the new leader recorded")
                return time.monotonic() - killed_at
            finally:
                stop.set()
                await runner

    took = async_to_sync(scenario)()
    assert took < 10, f"the new leader took {took:.2f}s to be recorded"


def test_watches_can_be_turned_off_by_setting(settings) -> None:
    from console.collector.collector_config import CollectorConfig

    settings.COLLECTOR_WATCH = False
    assert CollectorConfig.from_settings().watch is False
