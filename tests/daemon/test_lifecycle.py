"""Restart, stop, start and scale a real local cluster under a steady writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.localcluster.lifecycle import (
    restart_node,
    run_on_release,
    scale,
    start_node,
    status,
    stop_node,
)
from daemon.localcluster.manager import LifecycleError, LocalNodes
from daemon.localcluster.writer import SteadyWriter, executed_ids
from tests.cluster_harness import ADMIN_TOKEN, ROOT, Cluster

pytestmark = pytest.mark.cluster

NOOP = {"id": "tick", "name": "tick", "handler": {"kind": "noop"}}


def manager(cluster: Cluster, steps: list[dict] | None = None) -> LocalNodes:
    return LocalNodes(
        cluster.layout,
        say=(steps.append if steps is not None else None),
        env={"PYTHONPATH": str(ROOT)},
        timeout_s=30,
    )


def writer_for(cluster: Cluster, nodes: LocalNodes, rate: float = 25) -> SteadyWriter:
    cluster.define(cluster.nodes[0], NOOP)
    return SteadyWriter(lambda: [s.url for s in nodes.layout.nodes], ADMIN_TOKEN, "tick", rate=rate)


def assert_nothing_acknowledged_was_lost(cluster: Cluster, writer: SteadyWriter) -> None:
    # Every node of the layout, not only those this process started (the lifecycle
    # functions restart nodes as their own processes).
    manager(cluster).wait_converged()
    acknowledged = set(writer.acknowledged_ids)
    assert acknowledged
    for spec in cluster.layout.nodes:
        missing = acknowledged - executed_ids(spec.url, ADMIN_TOKEN)
        assert not missing, f"{spec.name} lacks {len(missing)} acknowledged executions"


def test_restarting_a_follower_then_the_leader_loses_no_acknowledged_write(
    cluster: Cluster, tmp_path: Path
) -> None:
    steps: list[dict] = []
    nodes = manager(cluster, steps)
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    with writer_for(cluster, nodes) as writer:
        restart_node(nodes, follower.name)
        outcome = restart_node(nodes, leader.name)
    report = writer.report
    assert report.failed == 0, report.as_json()
    assert outcome.ok and outcome.detail["leadershipMovedTo"] not in (None, leader.name)
    names = [s.step for s in outcome.steps if s.status == "done"]
    assert names == ["preflight", "drain", "hand leadership away", "stop", "start",
                     "catch up", "undrain"]  # fmt: skip
    assert [s["status"] for s in steps[:2]] == ["running", "done"]  # reported as they go
    rows = {r["name"]: r for r in status(nodes)}
    assert rows[leader.name]["running"] and rows[leader.name]["draining"] is False
    assert rows[leader.name]["role"] == "follower"
    assert_nothing_acknowledged_was_lost(cluster, writer)


def test_stopping_a_node_that_quorum_needs_is_refused_with_the_reason(cluster: Cluster) -> None:
    nodes = manager(cluster)
    first, second, _third = (n.name for n in cluster.nodes)
    stop_node(nodes, first)
    with pytest.raises(LifecycleError, match=r"refused: stopping .* quorum needs 2"):
        stop_node(nodes, second)
    assert nodes.process(second).running()
    start_node(nodes, first)
    view = cluster.cluster_view(cluster.nodes[2])
    assert view["reachableNodes"] == 3
    assert not any(n["draining"] for n in view["nodes"])


def test_scale_to_five_and_back_to_three_under_writes(cluster: Cluster) -> None:
    nodes = manager(cluster)
    with writer_for(cluster, nodes) as writer:
        grown = scale(nodes, 5)
        assert cluster.cluster_view(cluster.nodes[0])["clusterSize"] == 5
        shrunk = scale(nodes, 3)
    assert grown.detail["members"] == [f"unrdf-daemon-{i}" for i in range(5)]
    assert shrunk.detail["members"] == [f"unrdf-daemon-{i}" for i in range(3)]
    assert writer.report.failed == 0, writer.report.as_json()
    assert cluster.cluster_view(cluster.nodes[0])["clusterSize"] == 3
    assert [s.name for s in cluster.layout.nodes] == [f"unrdf-daemon-{i}" for i in range(3)]
    assert_nothing_acknowledged_was_lost(cluster, writer)


def test_scaling_below_three_is_refused(cluster: Cluster) -> None:
    with pytest.raises(LifecycleError, match="at least 3 members"):
        scale(manager(cluster), 2)
    assert cluster.cluster_view()["clusterSize"] == 3


BROKEN_PYTHON = """#!/bin/sh
# Imports fine (answers the build probe), but the node itself will not start.
case "$*" in
  *"-c "*) echo '{"release": "broken", "maxCodeVersion": 0}'; exit 0 ;;
esac
echo "release broken: cannot start ($*)" >&2
exit 3
"""


def test_a_node_that_will_not_start_on_a_release_is_put_back_with_its_log_in_the_reason(
    cluster: Cluster, tmp_path: Path
) -> None:
    envs = tmp_path / "envs"
    python = envs / "broken" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(BROKEN_PYTHON)
    python.chmod(0o755)
    (envs / "broken" / ".installed").write_text("{}")
    nodes = manager(cluster)
    follower = next(n for n in cluster.nodes if n is not cluster.leader())
    with pytest.raises(LifecycleError, match="release broken: cannot start"):
        run_on_release(nodes, follower.name, "broken", envs)
    assert cluster.layout.release_of(follower.name) is None
    health = cluster.get(follower, "/health/node").json()
    assert health["build"]["release"] == "dev" and not health["draining"]
    assert cluster.cluster_view()["reachableNodes"] == 3
