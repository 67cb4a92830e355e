"""Fixtures that start real daemon clusters (separate processes on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster_harness import Cluster

RUNBOOK_OP = {"id": "test-op", "name": "Test Operation", "handler": 'console.log("success")'}


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator:
    """Factory: make_cluster(size=3, overrides={...}) -> started Cluster; all stopped after."""
    clusters: list[Cluster] = []

    def make(size: int = 3, start: bool = True, **kwargs) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(clusters)}", size=size, **kwargs)
        clusters.append(cluster)
        return cluster.start() if start else cluster

    yield make
    for cluster in clusters:
        cluster.stop_all()


@pytest.fixture
def cluster(make_cluster) -> Cluster:
    return make_cluster()
