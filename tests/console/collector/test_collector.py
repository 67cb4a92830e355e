"""The collector against a real 3-node daemon cluster: state, leader, failures, events."""

from __future__ import annotations

import os
import signal
import time

import pytest

from console.clusters.models import Cluster, Node, Sample
from tests.cluster_harness import Cluster as DaemonCluster
from tests.console.collector.support import (
    TIMEOUT_S,
    events,
    make_collector,
    tick,
    tick_until,
)

pytestmark = [pytest.mark.cluster, pytest.mark.django_db]


def test_one_tick_records_every_node_the_leader_and_a_sample(
    daemons: DaemonCluster, watched: Cluster
) -> None:
    leader = daemons.leader()
    result = tick(make_collector())
    assert result.failures == 0
    watched.refresh_from_db()
    assert watched.leader_name == leader.name
    assert watched.has_quorum and watched.cluster_size == 3 and watched.term > 0
    assert watched.last_polled_at is not None
    nodes = {n.name: n for n in watched.nodes.all()}
    assert set(nodes) == {n.name for n in daemons.nodes}
    assert all(n.reachable and n.last_seen_at and n.version for n in nodes.values())
    assert nodes[leader.name].role == "leader"
    assert {n.role for name, n in nodes.items() if name != leader.name} == {"follower"}
    assert all(n.data_dir_bytes and n.digest for n in nodes.values())
    sample = Sample.objects.get(cluster=watched)
    assert sample.active == 0 and sample.success_rate is not None
    assert 0 < sample.max_disk_usage <= 1


def test_executions_per_second_comes_from_the_operation_total(
    daemons: DaemonCluster, watched: Cluster
) -> None:
    collector = make_collector(sample_interval_s=0.0)
    tick(collector)
    leader = daemons.leader()
    daemons.define(leader, {"id": "op", "name": "op", "handler": {"kind": "noop"}})
    for _ in range(5):
        assert daemons.post(leader, "/execute/op").status_code == 200
    tick(collector)
    latest = Sample.objects.filter(cluster=watched).latest("at")
    assert latest.total_operations == 5
    assert latest.executions_per_s and latest.executions_per_s > 0


def test_a_killed_node_shows_unreachable_with_last_seen_and_is_journaled_once(
    daemons: DaemonCluster, watched: Cluster
) -> None:
    collector = make_collector()
    leader = daemons.leader()
    victim = next(n for n in daemons.nodes if n.name != leader.name)
    tick(collector)
    seen_before = Node.objects.get(name=victim.name).last_seen_at
    daemons.kill(victim)
    for _ in range(3):
        tick(collector)
    node = Node.objects.get(name=victim.name)
    assert not node.reachable and node.role == "unknown"
    assert node.last_seen_at == seen_before and node.last_polled_at > seen_before
    # Only the victim's: on a loaded machine a live node can miss one deadline too,
    # and that is journaled (and then recovered) on its own.
    [event] = [e for e in events("node.unreachable") if e.payload["node"] == victim.name]
    assert event.payload == {"node": victim.name, "last_seen": seen_before.isoformat()}
    assert event.actor == "collector" and event.cluster_id == watched.pk
    reachable = Node.objects.filter(cluster=watched, reachable=True).exclude(name=victim.name)
    for _ in range(10):
        if reachable.count() == 2:
            break
        tick(collector)
    assert reachable.count() == 2


def test_a_restarted_node_is_journaled_as_recovered(
    daemons: DaemonCluster, watched: Cluster
) -> None:
    collector = make_collector()
    victim = next(n for n in daemons.nodes if n.name != daemons.leader().name)
    tick(collector)
    daemons.kill(victim)
    tick(collector)
    daemons.start_node(victim)
    daemons.wait_ready([victim])
    tick_until(
        collector,
        lambda: Node.objects.get(name=victim.name).reachable,
        20,
        "the restarted node to answer",
    )
    assert [e.payload for e in events("node.recovered")] == [{"node": victim.name}]


def test_a_hung_node_costs_one_timeout_not_a_hung_tick(
    daemons: DaemonCluster, watched: Cluster
) -> None:
    collector = make_collector()
    tick(collector)
    victim = next(n for n in daemons.nodes if n.name != daemons.leader().name)
    os.kill(victim.proc.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        started = time.monotonic()
        result = tick(collector)
        elapsed = time.monotonic() - started
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    assert result.failures == 0
    # node polls and the summary run at once; a second summary round only if needed
    assert elapsed < 2 * TIMEOUT_S + 1.0, f"tick took {elapsed:.2f}s"
    assert not Node.objects.get(name=victim.name).reachable


def test_killing_the_leader_journals_the_new_leader(
    daemons: DaemonCluster, watched: Cluster
) -> None:
    collector = make_collector()
    old = daemons.leader()
    tick(collector)
    assert [e.payload["to"] for e in events("leader.changed")] == [old.name]  # first sight
    daemons.kill(old)
    tick_until(
        collector,
        lambda: Cluster.objects.get(pk=watched.pk).leader_name not in ("", old.name),
        20,
        "a new leader",
    )
    new = Cluster.objects.get(pk=watched.pk).leader_name
    assert new == daemons.leader().name
    moves = [e.payload for e in events("leader.changed")][1:]
    assert moves[0]["from"] == old.name and moves[-1]["to"] == new
    assert Node.objects.get(name=new).role == "leader"
    assert not Node.objects.get(name=old.name).reachable
    # a change makes the next polls fast, so the dashboard sees the new leader soon
    assert collector.next_interval() == collector.config.fast_interval_s


def test_a_cluster_with_no_node_answering_is_polled_without_error(db) -> None:
    from tests.conftest import free_port

    Cluster.objects.create(name="dark", seed_urls=[f"http://127.0.0.1:{free_port()}"])
    result = tick(make_collector())
    assert result.failures == 0
    cluster = Cluster.objects.get(name="dark")
    assert cluster.last_polled_at is not None and not cluster.has_quorum
    assert cluster.nodes.count() == 0  # nobody has told us a name yet
