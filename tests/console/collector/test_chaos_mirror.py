"""Under faults, the console's mirrored history equals the daemon's: the collector
ticks (in-process) through a leader kill and a paused follower under a steady
writer; afterwards its Execution rows are exactly every node's feed, and every
acknowledged execution is among them once."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from console.clusters.models import Execution
from tests.chaos.checker import check_executions
from tests.chaos.cluster_ops import NOOP, execution_ids
from tests.chaos.writer import Writer
from tests.cluster_harness import ADMIN_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster
from tests.conftest import wait_for
from tests.console.collector.support import make_collector, register, tick

pytestmark = [pytest.mark.django_db, pytest.mark.cluster]


def test_the_mirrored_history_equals_the_daemons_after_a_leader_kill_and_a_pause(
    daemons: DaemonCluster,
) -> None:
    cluster = register(daemons)
    collector = make_collector()
    assert daemons.define(daemons.nodes[0], NOOP).status_code in (200, 201)
    with Writer([n.url for n in daemons.nodes], NOOP["id"], ADMIN_TOKEN) as writer:
        wait_for(lambda: writer.count() >= 100, 20, "100 acknowledged")
        tick(collector)
        leader = daemons.leader()
        daemons.kill(leader, signal.SIGKILL)
        for _ in range(3):
            tick(collector)  # the collector keeps mirroring through the failover
            time.sleep(0.3)
        daemons.start_node(leader)
        daemons.wait_ready([leader])
        follower = next(n for n in daemons.nodes if n.name != daemons.leader().name)
        assert follower.proc is not None
        follower.proc.send_signal(signal.SIGSTOP)
        tick(collector)
        time.sleep(1.0)
        follower.proc.send_signal(signal.SIGCONT)
        acked_at = writer.count()
        wait_for(lambda: writer.count() >= acked_at + 100, 20, "writes after the faults")
    daemons.wait_converged(timeout=30)
    daemon_ids = execution_ids(daemons, daemons.nodes[0])

    def mirrored() -> list[str]:
        tick(collector)
        return list(
            Execution.objects.filter(cluster=cluster)
            .order_by("seq")
            .values_list("execution_id", flat=True)
        )

    wait_for(lambda: mirrored() == daemon_ids, 30, "the mirror to equal the daemon's feed")
    counts = Counter(mirrored())
    assert all(c == 1 for c in counts.values())
    assert set(writer.acked_ids()) <= counts.keys()
    failed = sum(v for k, v in writer.outcomes.items() if k != "200")
    assert check_executions(daemons, writer.acked_ids(), allowed_unacked=failed)["ok"]
