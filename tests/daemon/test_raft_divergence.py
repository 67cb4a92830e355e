"""pysyncobj's CRITICAL "truncating already-applied log entries ... state machine
may have diverged" is raised only by a real divergence.

pysyncobj 0.3.17 truncated a follower's log after every append's prevLogIdx and
re-added the same entries, so after a snapshot and a leader change it logged that
CRITICAL although nothing had diverged (three leader kills: six lines, all nodes
converged). daemon/raft_protocol.py skips entries a follower already holds, so
the line now means what it says.
"""

from __future__ import annotations

import signal

import pytest

from tests.chaos.cluster_ops import NOOP, execution_ids
from tests.chaos.writer import Writer
from tests.cluster_harness import ADMIN_TOKEN, Cluster, wait_for

pytestmark = pytest.mark.cluster

FALSE_ALARM = "truncating already-applied"


def test_leader_kills_after_snapshots_under_load_raise_no_divergence_alarm(
    cluster: Cluster,
) -> None:
    assert cluster.define(cluster.nodes[0], NOOP).status_code in (200, 201)
    with Writer([n.url for n in cluster.nodes], NOOP["id"], ADMIN_TOKEN) as writer:
        for round_ in range(3):
            wait_for(lambda r=round_: writer.count() > 200 * (r + 1), timeout=60)
            for node in cluster.live_nodes():
                assert cluster.post(node, "/admin/snapshot", timeout=60).status_code == 200
            leader = cluster.leader()
            cluster.kill(leader, signal.SIGKILL)
            acked = writer.count()
            wait_for(lambda a=acked: writer.count() > a + 100, timeout=60)
            cluster.start_node(leader)
            cluster.wait_ready([leader])
    cluster.wait_converged(timeout=30)
    for node in cluster.nodes:
        assert FALSE_ALARM not in node.log(), node.log()[-3000:]
        assert "replaces applied entry" not in node.log()
        missing = set(writer.acked_ids()) - set(execution_ids(cluster, node))
        assert not missing, f"{node.name} lost {len(missing)} acknowledged executions"
