"""POST /shutdown and SIGTERM: drain, hand leadership away, exit cleanly."""

from __future__ import annotations

import signal

import pytest

from tests.cluster_harness import Cluster, wait_for

pytestmark = pytest.mark.cluster


def test_shutdown_of_the_leader_hands_leadership_away_and_exits(cluster: Cluster) -> None:
    leader = cluster.leader()
    response = cluster.post(leader, "/shutdown")
    assert response.status_code == 202
    assert leader.proc is not None
    assert leader.proc.wait(timeout=30) == 0
    new_leader = cluster.leader()
    assert new_leader is not leader
    # The handover was a transfer, not an election after a timeout: the
    # survivors kept quorum and still take writes.
    cluster.define(new_leader, {"id": "after", "name": "after", "handler": {"kind": "noop"}})
    assert cluster.post(new_leader, "/execute/after").status_code == 200
    assert "handed leadership to" in leader.log()


def test_sigterm_lets_in_flight_work_finish_before_exit(cluster: Cluster) -> None:
    import threading

    node = cluster.nodes[0]
    cluster.define(node, {"id": "slow", "name": "slow", "handler": {"kind": "sleep", "ms": 1000}})
    result: list = []
    thread = threading.Thread(target=lambda: result.append(cluster.post(node, "/execute/slow")))
    thread.start()
    wait_for(lambda: cluster.get(node, "/queue").json()["active"] == 1, what="work in flight")
    cluster.kill(node, signal.SIGTERM)
    thread.join(timeout=30)
    assert result[0].status_code == 200
    assert result[0].json()["status"] == "success"
    assert node.proc is not None and node.proc.returncode == 0
