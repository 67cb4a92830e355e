"""The local node manager restarts a crashed node (with a back-off, journaled); an
operator-stopped node stays stopped. Real node processes, the collector's own call."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from django.conf import LazySettings

from console.clusters.models import Cluster
from console.collector.collector import restart_crashed_nodes
from console.events.models import Event
from console.runbooks.nodes import manager_for
from console.runbooks.nodes.crashes import backoff_s
from tests import cluster_harness
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.cluster]


@pytest.fixture
def managed(
    console_cluster: Cluster,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    tmp_path: Path,
) -> Cluster:
    settings.LOCAL_CLUSTER_DIR = daemon_cluster.layout.root
    settings.RELEASES_DIR = tmp_path / "releases"
    return console_cluster


def test_a_crashed_node_is_restarted_once_per_back_off_and_journaled(
    managed: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    node = daemon_cluster.nodes[2]
    daemon_cluster.kill(node, signal.SIGKILL)

    restart_crashed_nodes([managed])
    restart_crashed_nodes([managed])  # within the back-off: not started twice

    events = list(Event.objects.filter(kind="node.crash_restarted"))
    assert [(e.payload["node"], e.payload["attempt"]) for e in events] == [(node.name, 1)]
    assert events[0].actor == "collector" and events[0].cluster == managed
    wait_for(lambda: manager_for(managed).status(node.name).running, 10, "the restarted node")
    wait_for(
        lambda: daemon_cluster.get(node, "/health/startup").status_code == 200, 30, "it rejoins"
    )
    assert backoff_s(1) == 2 and backoff_s(10) == 60


def test_an_operator_stopped_node_is_not_restarted(
    managed: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    node = daemon_cluster.nodes[1]
    manager_for(managed).stop(node.name)

    restart_crashed_nodes([managed])

    assert not manager_for(managed).status(node.name).running
    assert not Event.objects.filter(kind__startswith="node.crash").exists()


def test_a_cluster_whose_nodes_are_not_the_local_layout_is_left_alone(
    managed: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    other = Cluster.objects.create(name="elsewhere", seed_urls=["http://127.0.0.1:1"])
    daemon_cluster.kill(daemon_cluster.nodes[2], signal.SIGKILL)

    restart_crashed_nodes([other])

    assert not manager_for(managed).status(daemon_cluster.nodes[2].name).running
    assert not Event.objects.filter(kind__startswith="node.crash").exists()
