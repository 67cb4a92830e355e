"""Fixtures for the collector's tests: a real 3-node daemon cluster, and a Cluster row
watching it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.clusters.models import Cluster
from tests.cluster_harness import ADMIN_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster
from tests.console.collector.support import register


@pytest.fixture
def daemons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaemonCluster]:
    monkeypatch.setenv("DAEMON_TOKEN", ADMIN_TOKEN)
    cluster = DaemonCluster(tmp_path / "daemons", size=3).start()
    try:
        yield cluster
    finally:
        for node in cluster.nodes:  # a SIGSTOPped node would ignore SIGTERM
            if node.alive:
                os.kill(node.proc.pid, signal.SIGCONT)
        cluster.stop_all()


@pytest.fixture
def watched(daemons: DaemonCluster) -> Cluster:
    return register(daemons)
