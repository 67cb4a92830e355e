"""While every member is watched, the collector polls a cluster in full only when a watch
says something changed, or every reconcile_s; in between, chart samples and the feed come
from the leader's summary alone (cadence.py, issue 16)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from console.clusters.models import Cluster, Execution, Node, Sample
from console.collector import collector as collector_module
from console.collector.cadence import ClusterMemory, Plan, plan
from console.collector.collector import Collector, TickResult
from console.collector.collector_config import CollectorConfig
from console.collector.record import Recorder
from tests.cluster_harness import Cluster as DaemonCluster
from tests.console.collector.support import make_collector

OP = {"id": "cadence-op", "name": "cadence", "handler": {"kind": "noop"}}
CONFIG = CollectorConfig(reconcile_s=5.0, sample_interval_s=1.0)


def polled_memory(**fields: object) -> ClusterMemory:
    """A cluster polled in full at t=100 (monotonic), leader known."""
    memory = ClusterMemory(Recorder(CONFIG), full_at=100.0, sampled_at=100.0)
    memory.leader_url = "http://127.0.0.1:1"
    for name, value in fields.items():
        setattr(memory, name, value)
    return memory


def test_a_watched_cluster_gets_only_a_sample_between_full_polls() -> None:
    assert plan(polled_memory(), CONFIG, 101.0, watched=True, dirty=False) is Plan.SAMPLE
    assert plan(polled_memory(), CONFIG, 100.5, watched=True, dirty=False) is Plan.IDLE


def test_an_unwatched_member_keeps_the_full_poll_at_every_tick() -> None:
    assert plan(polled_memory(), CONFIG, 101.0, watched=False, dirty=False) is Plan.FULL


def test_a_watch_saying_changed_brings_a_full_poll_at_once() -> None:
    assert plan(polled_memory(), CONFIG, 100.1, watched=True, dirty=True) is Plan.FULL


def test_a_full_poll_comes_every_reconcile_interval_and_in_the_fast_window() -> None:
    assert plan(polled_memory(), CONFIG, 105.0, watched=True, dirty=False) is Plan.FULL
    fast = polled_memory(fast_until=103.0)
    assert plan(fast, CONFIG, 101.0, watched=True, dirty=False) is Plan.FULL


def test_a_cluster_never_polled_or_without_a_leader_is_polled_in_full() -> None:
    never = ClusterMemory(Recorder(CONFIG))
    assert plan(never, CONFIG, 101.0, watched=True, dirty=False) is Plan.FULL
    leaderless = polled_memory(leader_url=None)
    assert plan(leaderless, CONFIG, 101.0, watched=True, dirty=False) is Plan.FULL


# ---- against a real cluster ------------------------------------------------------
async def _until(condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


async def _sample_tick(collector: Collector, name: str) -> TickResult:
    """Tick until this cluster's tick is a sample (the watches are held, nothing dirty)."""
    deadline = time.monotonic() + 20
    while True:
        result = await collector.tick()
        if result.plans.get(name) is Plan.SAMPLE:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"no sample tick in 20 s: last plans {result.plans}")
        await asyncio.sleep(0.05)


def _nodes_polled_at(cluster: Cluster) -> dict[str, object]:
    return dict(Node.objects.filter(cluster=cluster).values_list("name", "last_polled_at"))


@pytest.mark.cluster
@pytest.mark.django_db
def test_sample_ticks_write_a_sample_and_mirror_new_executions_without_polling_every_node(
    daemons: DaemonCluster, watched: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "close_old_connections", lambda: None)
    assert daemons.define(daemons.leader(), OP).status_code in (200, 201)
    collector = make_collector(reconcile_s=600, sample_interval_s=0.1, alert_interval_s=600)

    async def scenario() -> None:
        async with collector:
            await collector.tick()  # the first, full poll starts the watches
            await _sample_tick(collector, watched.name)
            polled = await sync_to_async(_nodes_polled_at)(watched)
            samples = await sync_to_async(Sample.objects.filter(cluster=watched).count)()
            await _sample_tick(collector, watched.name)
            assert await sync_to_async(Sample.objects.filter(cluster=watched).count)() == (
                samples + 1
            )
            # The 5-minute figures come from the last full poll, not left empty.
            latest = await sync_to_async(Sample.objects.filter(cluster=watched).latest)("at")
            assert latest.success_rate is not None and latest.total_operations is not None
            leader = daemons.leader()
            for _ in range(5):
                answer = await sync_to_async(daemons.post)(leader, f"/execute/{OP['id']}")
                assert answer.status_code == 200
            mirrored = sync_to_async(Execution.objects.filter(cluster=watched).count)
            for _ in range(20):
                result = await _sample_tick(collector, watched.name)
                assert result.failures == 0
                if await mirrored() == 5:
                    break
            assert await mirrored() == 5, "the feed was not mirrored by sample ticks"
            # No node was asked in between: their rows kept the full poll's time.
            assert await sync_to_async(_nodes_polled_at)(watched) == polled

    async_to_sync(scenario)()


@pytest.mark.cluster
@pytest.mark.django_db
def test_a_summary_that_disagrees_with_the_rows_turns_the_sample_into_a_full_poll(
    daemons: DaemonCluster, watched: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "close_old_connections", lambda: None)
    collector = make_collector(reconcile_s=600, sample_interval_s=0.1, alert_interval_s=600)
    leader = daemons.leader()

    async def scenario() -> None:
        async with collector:
            await collector.tick()
            await _sample_tick(collector, watched.name)
            polled = await sync_to_async(_nodes_polled_at)(watched)
            # Rows that no watch corrected (e.g. a change lost between two holds).
            await sync_to_async(Cluster.objects.filter(pk=watched.pk).update)(leader_name="")
            result = await _sample_tick(collector, watched.name)
            assert result.failures == 0
            row = await sync_to_async(Cluster.objects.get)(pk=watched.pk)
            assert row.leader_name == leader.name
            after = await sync_to_async(_nodes_polled_at)(watched)
            assert all(after[name] != polled[name] for name in polled), "nodes not re-polled"

    async_to_sync(scenario)()


@pytest.mark.cluster
@pytest.mark.django_db
def test_a_killed_follower_reaches_the_database_through_its_watch_not_the_reconcile(
    daemons: DaemonCluster, watched: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "close_old_connections", lambda: None)
    collector = make_collector(reconcile_s=600, alert_interval_s=600)
    follower = next(n for n in daemons.nodes if n.name != daemons.leader().name)

    async def reachable() -> bool:
        rows = Node.objects.filter(cluster=watched, name=follower.name, reachable=True)
        return await sync_to_async(rows.exists)()

    async def scenario() -> float:
        stop = asyncio.Event()
        async with collector:
            runner = asyncio.create_task(collector.run(stop))
            try:

                async def all_watched() -> bool:
                    assert collector.watches is not None
                    urls = [n.url for n in daemons.nodes]
                    return await reachable() and collector.watches.watching(watched.pk, urls)

                await _until(all_watched, 20, "every node recorded and watched")

                async def settled() -> bool:
                    # A sample tick came after the last full poll: the full polls that
                    # newly opened watches ask for are over, only a watch can bring one.
                    memory = collector.memory.get(watched.pk)
                    return memory is not None and memory.sampled_at > memory.full_at

                await _until(settled, 20, "a sample tick after the full polls")
                killed_at = time.monotonic()
                daemons.kill(follower)

                async def gone() -> bool:
                    return not await reachable()

                await _until(gone, 20, "the killed follower recorded unreachable")
                return time.monotonic() - killed_at
            finally:
                stop.set()
                await runner

    took = async_to_sync(scenario)()
    assert took < 5, f"the killed follower took {took:.2f}s to be recorded"
