"""The rolling upgrade of a 5-node cluster under the steady writer, end to end: a real
worker, real daemon processes, a real release built from this tree."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import LazySettings

from console.clusters.models import Cluster
from console.runbooks.nodes import manager_for
from tests import cluster_harness
from tests.console.runbooks.test_upgrade_live import (
    Serving,
    assert_nothing_lost,
    max_code,
    registered,
    request,
    writer_for,
)
from tests.console.runbooks.test_worker import finished
from tests.console.runbooks.upgrade_faults_support import step_times, wheel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]


@pytest.fixture
def daemon_cluster(tmp_path: Path) -> Iterator[cluster_harness.Cluster]:
    """Five nodes instead of the conftest's three (the console fixtures build on it)."""
    cluster = cluster_harness.Cluster(tmp_path / "daemons", size=5)
    try:
        yield cluster.start()
    finally:
        cluster.stop_all()


def test_a_five_node_rolling_upgrade_under_a_steady_writer_fails_no_execution(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    tmp_path_factory: pytest.TempPathFactory,
    operator,
) -> None:
    registered(wheel(tmp_path_factory, "up-2"), settings, max_code(daemon_cluster))
    leader_before = daemon_cluster.leader().name
    serving = Serving(daemon_cluster)
    writer = writer_for(serving)
    started = time.monotonic()

    run = request(managed, {"release": "up-2", "soakS": 2}, operator)

    assert finished(run, 400).status == "succeeded", run.error
    took = time.monotonic() - started
    report = writer.stop()
    serving.stop()
    assert len(run.params["order"]) == 5 and run.params["order"][-1] == leader_before
    nodes = manager_for(managed)
    for node in daemon_cluster.nodes:
        assert nodes.status(node.name).release == "up-2"
        health = daemon_cluster.get(node, "/health/node").json()
        assert health["build"]["release"] == "up-2" and health["draining"] is False
    changes = len(serving.leaders) - 1
    print(f"STEPS 5 nodes: {step_times(run)}")
    print(f"UPGRADE 5 nodes: {took:.0f}s, leader changes {changes}, writer {report.as_json()}")
    assert report.acknowledged > 100 and report.failed == 0, report.as_json()
    assert changes <= 1, serving.leaders
    assert_nothing_lost(daemon_cluster, writer)
