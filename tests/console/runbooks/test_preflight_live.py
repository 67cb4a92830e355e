"""Preflight against a real daemon cluster: the live reads parse a real node's answers
and a killed node is refused. The rules themselves are unit-tested over a fake cluster
(test_actions.py); these two prove the fake tells the truth about the wire."""

from __future__ import annotations

import pytest

from console.clusters.models import Cluster
from console.runbooks import preflight
from tests import cluster_harness

pytestmark = [pytest.mark.django_db, pytest.mark.cluster]


def test_a_healthy_real_cluster_allows_every_action_and_lists_its_steps(
    console_cluster: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    leader = daemon_cluster.leader().name
    follower = next(n.name for n in daemon_cluster.nodes if n.name != leader)
    names = sorted(n.name for n in daemon_cluster.nodes)

    ok, reasons, steps = preflight.check(console_cluster, "snapshot", {"node": "all"})
    assert (ok, reasons, steps) == (True, [], [f"snapshot {name}" for name in names])
    ok, reasons, steps = preflight.check(console_cluster, "drain", {"node": follower})
    assert (ok, reasons) == (True, []) and len(steps) == 3
    ok, reasons, steps = preflight.check(console_cluster, "transfer_leader", {"target": follower})
    assert (ok, reasons) == (True, [])
    assert preflight.check(console_cluster, "undrain", {"node": follower}).reasons == [
        f"node {follower} is not draining"
    ]


def test_a_killed_node_is_refused_for_every_action_that_needs_it(
    console_cluster: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    leader = daemon_cluster.leader()
    dead = next(n for n in daemon_cluster.nodes if n is not leader)
    daemon_cluster.kill(dead)
    cluster_harness.wait_for(
        lambda: not _member(daemon_cluster, dead.name)["reachable"], what="the peers to notice"
    )

    for action, params in [
        ("snapshot", {"node": "all"}),
        ("drain", {"node": dead.name}),
        ("transfer_leader", {"target": dead.name}),
    ]:
        verdict = preflight.check(console_cluster, action, params)
        assert not verdict.ok and verdict.steps == [], (action, params)
        assert any(r.startswith(f"node {dead.name} unreachable") for r in verdict.reasons), (
            action,
            verdict.reasons,
        )


def _member(daemon_cluster: cluster_harness.Cluster, name: str) -> dict:
    live = next(n for n in daemon_cluster.live_nodes() if n.name != name)
    view = daemon_cluster.cluster_view(live)
    return next(n for n in view["nodes"] if n["name"] == name)
