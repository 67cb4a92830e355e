"""Helpers for the collector's tests: a collector with short timeouts, ticks on the test's
own database connection, and the events they journaled."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync

from console.clusters.models import Cluster
from console.collector.collector import Collector, TickResult
from console.collector.collector_config import CollectorConfig
from console.events.models import Event
from tests.cluster_harness import Cluster as DaemonCluster

TIMEOUT_S = 0.8


def register(daemons: DaemonCluster, name: str = "test") -> Cluster:
    return Cluster.objects.create(name=name, seed_urls=[n.url for n in daemons.nodes])


def make_collector(**overrides: float) -> Collector:
    config = CollectorConfig(timeout_s=TIMEOUT_S, prune_every_s=3600, **overrides)
    return Collector(config)


def tick(collector: Collector) -> TickResult:
    """One tick on this thread's database connection (the test's transaction)."""

    async def once() -> TickResult:
        async with collector:
            return await collector.tick()

    return async_to_sync(once)()


def tick_until(
    collector: Collector, condition: Callable[[], object], timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        tick(collector)
        if condition():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")


def events(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind))
