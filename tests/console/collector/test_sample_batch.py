"""The sample ticks of one tick write in one transaction (sample_batch.SampleBatch, issue
16), and one cluster's failed write still fails only that cluster's sample."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import ObjectDoesNotExist

from console.clusters.models import Cluster, Execution, Sample
from console.collector import collector as collector_module
from console.collector.cadence import Plan
from console.collector.collector import Collector, TickResult
from tests.cluster_harness import ADMIN_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster
from tests.console.collector.support import make_collector, register

OP = {"id": "batch-op", "name": "batch", "handler": {"kind": "noop"}}


@pytest.fixture
def two_clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[DaemonCluster]]:
    monkeypatch.setenv("DAEMON_TOKEN", ADMIN_TOKEN)
    clusters = [DaemonCluster(tmp_path / f"d{i}", size=1).start() for i in range(2)]
    try:
        yield clusters
    finally:
        for cluster in clusters:
            cluster.stop_all()


async def _both_sampled(collector: Collector, names: list[str]) -> TickResult:
    """Tick until one tick samples both clusters (watches held, nothing dirty)."""
    deadline = time.monotonic() + 20
    while True:
        result = await collector.tick()
        if all(result.plans.get(name) is Plan.SAMPLE for name in names):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"no tick sampled both in 20 s: last plans {result.plans}")
        await asyncio.sleep(0.05)


def _samples(cluster: Cluster) -> int:
    return Sample.objects.filter(cluster=cluster).count()


def set_up(
    two_clusters: list[DaemonCluster], monkeypatch: pytest.MonkeyPatch, executions: int
) -> tuple[list[Cluster], Collector]:
    """Both clusters registered with the noop defined (and run `executions` times), and a
    collector that samples often, reconciles and evaluates alerts rarely."""
    monkeypatch.setattr(collector_module, "close_old_connections", lambda: None)
    rows = [register(d, name=f"c{i}") for i, d in enumerate(two_clusters)]
    for daemons in two_clusters:
        assert daemons.define(daemons.leader(), OP).status_code in (200, 201)
        for _ in range(executions):
            assert daemons.post(daemons.leader(), f"/execute/{OP['id']}").status_code == 200
    collector = make_collector(reconcile_s=600, sample_interval_s=0.1, alert_interval_s=600)
    return rows, collector


@pytest.mark.cluster
@pytest.mark.django_db
def test_two_clusters_sampled_in_one_tick_each_get_their_point_and_their_executions(
    two_clusters: list[DaemonCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, collector = set_up(two_clusters, monkeypatch, executions=0)
    names = [row.name for row in rows]

    async def scenario() -> None:
        async with collector:
            await collector.tick()  # the first, full poll starts the watches
            await _both_sampled(collector, names)
            before = [await sync_to_async(_samples)(row) for row in rows]
            result = await _both_sampled(collector, names)
            assert result.failures == 0
            after = [await sync_to_async(_samples)(row) for row in rows]
            assert after == [b + 1 for b in before]
            for i, daemons in enumerate(two_clusters):
                for _ in range(2 + i):
                    post = sync_to_async(daemons.post)
                    assert (await post(daemons.leader(), f"/execute/{OP['id']}")).status_code == 200
            want = [2, 3]
            for _ in range(20):
                result = await _both_sampled(collector, names)
                assert result.failures == 0
                mirrored = [
                    await sync_to_async(Execution.objects.filter(cluster=row).count)()
                    for row in rows
                ]
                if mirrored == want:
                    break
            assert mirrored == want, "sample ticks in one batch did not mirror both feeds"

    async_to_sync(scenario)()


@pytest.mark.cluster
@pytest.mark.django_db
def test_a_cluster_whose_write_fails_does_not_fail_the_other_cluster_s_sample(
    two_clusters: list[DaemonCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, collector = set_up(two_clusters, monkeypatch, executions=1)

    async def scenario() -> None:
        async with collector:
            await collector.tick()
            polled = [await sync_to_async(Cluster.objects.get)(pk=row.pk) for row in rows]
            kept, gone = polled
            reads = [await collector._read_sample(row) for row in polled]
            assert all(read is not None for read in reads)
            for read in reads:  # each has a feed page to store under its row's lock
                read.page = {"executions": [], "latestSeq": 0}
                read.after = read.memory.feed_cursor
            lags = dict(reads[1].memory.lags)
            before = await sync_to_async(_samples)(kept)
            # The operator deletes a cluster between the read and the write.
            await sync_to_async(Cluster.objects.filter(pk=gone.pk).delete)()
            await sync_to_async(collector._record_samples)(reads)
            assert reads[0].written and reads[0].error is None
            assert await sync_to_async(_samples)(kept) == before + 1
            assert not reads[1].written
            assert isinstance(reads[1].error, ObjectDoesNotExist)
            assert reads[1].memory.lags == lags  # what the failed write changed, put back

    async_to_sync(scenario)()
