"""Fixtures for the dashboard's tests that talk to real daemons."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster_harness import Cluster as DaemonCluster


@pytest.fixture(scope="module")
def daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonCluster]:
    """A 3-node daemon cluster with a leader, one per test module (tests define their
    own operations on it, so modules do not share one)."""
    cluster = DaemonCluster(tmp_path_factory.mktemp("daemons"), size=3).start()
    cluster.leader()
    try:
        yield cluster
    finally:
        cluster.stop_all()
