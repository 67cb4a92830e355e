"""Leadership transfer while clients keep writing (the CI failure of stop 17).

Under steady writes the target's forced election can lose to the outgoing leader's
newer log. The leader holds new appends while a transfer is pending, and retries a
lost one, so neither the caller nor the writers see a failure."""

from __future__ import annotations

import pytest

from tests.cluster_harness import Cluster, wait_for
from tests.console.runbooks.lifecycle_support import WRITE_OP, SteadyWriter

pytestmark = pytest.mark.cluster


def test_repeated_transfers_under_a_steady_writer_all_move_leadership(cluster: Cluster) -> None:
    cluster.define(cluster.nodes[0], WRITE_OP)
    # Twice the runbook writer's rate, so an append lands between the catch-up check
    # and the target's vote request as often as it can here.
    writer = SteadyWriter(lambda: [n.url for n in cluster.nodes], rate_per_s=100).start()
    try:
        for _ in range(6):
            written = writer.ok
            wait_for(lambda n=written: writer.ok >= n + 20, what="20 more writes")
            leader = cluster.leader()
            target = next(n for n in cluster.nodes if n is not leader)

            answer = cluster.post(leader, "/admin/transfer-leader", json={"target": target.name})

            assert answer.status_code == 200, answer.text
            assert answer.json()["previous"] == leader.name
            assert answer.json()["leader"] != leader.name
    finally:
        writer.stop()
    assert writer.failures == [], writer.failures[:5]
