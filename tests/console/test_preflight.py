"""Preflight against a real daemon cluster: what it allows, what it refuses and why."""

from __future__ import annotations

import pytest

from console.clusters.models import Cluster
from console.runbooks import preflight
from console.runbooks.models import RunbookRun
from tests import cluster_harness
from tests.conftest import free_port

pytest_plugins = ["tests.console.runbook_fixtures"]

pytestmark = [pytest.mark.django_db, pytest.mark.cluster]


def test_a_healthy_cluster_allows_every_action_and_lists_its_steps(
    console_cluster: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    leader = daemon_cluster.leader().name
    follower = next(n.name for n in daemon_cluster.nodes if n.name != leader)
    names = sorted(n.name for n in daemon_cluster.nodes)

    ok, reasons, steps = preflight.check(console_cluster, "snapshot", {"node": "all"})
    assert (ok, reasons) == (True, [])
    assert steps == [f"snapshot {name}" for name in names]

    ok, reasons, steps = preflight.check(console_cluster, "drain", {"node": follower})
    assert (ok, reasons) == (True, [])
    assert steps == [
        f"ask {follower} to drain",
        f"wait for {follower}'s work to finish",
        f"confirm {follower} reports draining",
    ]

    ok, reasons, steps = preflight.check(console_cluster, "transfer_leader", {"target": follower})
    assert (ok, reasons) == (True, [])
    assert steps == [f"transfer leadership to {follower}", f"confirm {follower} leads the cluster"]


def test_an_unknown_action_is_refused_with_the_choices(console_cluster: Cluster) -> None:
    ok, reasons, _ = preflight.check(console_cluster, "reboot", {})
    assert not ok
    assert reasons == [
        "unknown action 'reboot'; choose one of snapshot, drain, undrain, transfer_leader"
    ]


def test_missing_or_unknown_parameters_are_refused_before_the_cluster_is_asked(
    console_cluster: Cluster,
) -> None:
    assert preflight.check(console_cluster, "drain", {}).reasons == [
        "node is required: the name of a node"
    ]
    assert preflight.check(console_cluster, "drain", {"node": "x", "force": "1"}).reasons == [
        "unknown parameter 'force'; this action takes only 'node'"
    ]


def test_a_node_that_is_not_a_member_is_refused_by_name(console_cluster: Cluster) -> None:
    ok, reasons, _ = preflight.check(console_cluster, "drain", {"node": "ghost"})
    assert not ok
    assert reasons[0].startswith("node ghost is not a member of this cluster (members: unrdf-")


def test_an_unreachable_node_is_refused_for_every_action_that_needs_it(
    console_cluster: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    leader = daemon_cluster.leader()
    dead = next(n for n in daemon_cluster.nodes if n is not leader)
    daemon_cluster.kill(dead)
    cluster_harness.wait_for(
        lambda: not _member(daemon_cluster, dead.name)["reachable"], what="the peers to notice"
    )

    for action, params in [
        ("snapshot", {"node": dead.name}),
        ("snapshot", {"node": "all"}),
        ("drain", {"node": dead.name}),
        ("transfer_leader", {"target": dead.name}),
    ]:
        verdict = preflight.check(console_cluster, action, params)
        assert not verdict.ok, (action, params)
        assert any(r.startswith(f"node {dead.name} unreachable") for r in verdict.reasons), (
            action,
            verdict.reasons,
        )
        assert verdict.steps == []


def test_draining_would_leave_too_few_serving_nodes_is_refused(
    console_cluster: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    first, second = daemon_cluster.nodes[0], daemon_cluster.nodes[1]
    assert daemon_cluster.post(first, "/admin/drain").json()["draining"] is True
    cluster_harness.wait_for(
        lambda: _member(daemon_cluster, first.name, ask=second)["draining"],
        what="the drain to show in the cluster view",
    )

    verdict = preflight.check(console_cluster, "drain", {"node": second.name})

    assert not verdict.ok
    assert verdict.reasons == [
        f"draining {second.name} would leave 1 of 3 nodes serving; a majority (2) must keep serving"
    ]
    again = preflight.check(console_cluster, "drain", {"node": first.name})
    assert f"node {first.name} is already draining" in again.reasons


def test_undraining_a_node_that_is_not_draining_is_refused(
    console_cluster: Cluster, daemon_cluster: cluster_harness.Cluster
) -> None:
    name = daemon_cluster.nodes[0].name
    verdict = preflight.check(console_cluster, "undrain", {"node": name})
    assert verdict.reasons == [f"node {name} is not draining"]


def test_transfer_to_the_current_leader_or_a_lagging_node_is_refused(
    console_cluster: Cluster,
    daemon_cluster: cluster_harness.Cluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leader = daemon_cluster.leader().name
    follower = next(n.name for n in daemon_cluster.nodes if n.name != leader)
    assert preflight.check(console_cluster, "transfer_leader", {"target": leader}).reasons == [
        f"node {leader} is already the leader"
    ]

    # Any lag is too much when the limit is below zero: the rule, not the cluster, changes.
    monkeypatch.setenv("RUNBOOK_TRANSFER_MAX_LAG_MS", "-1")
    verdict = preflight.check(console_cluster, "transfer_leader", {"target": follower})
    assert not verdict.ok
    assert verdict.reasons[0].startswith(f"node {follower} lags ")
    assert "behind the leader (limit -1 ms / 50 entries)" in verdict.reasons[0]


def test_a_run_in_progress_refuses_another_and_names_it(console_cluster: Cluster) -> None:
    active = RunbookRun.objects.create(cluster=console_cluster, action="snapshot", status="running")
    verdict = preflight.check(console_cluster, "snapshot", {"node": "all"})
    assert verdict.reasons == [f"a run is already in progress on this cluster (run #{active.id})"]
    # ...except for the run itself, when its worker checks again at the start.
    assert preflight.check(console_cluster, "snapshot", {}, exclude_run_id=active.id).ok


@pytest.mark.django_db
def test_a_cluster_none_of_whose_nodes_answers_is_refused() -> None:
    cluster = Cluster.objects.create(name="gone", seed_urls=[f"http://127.0.0.1:{free_port()}"])
    verdict = preflight.check(cluster, "snapshot", {"node": "all"})
    assert verdict.reasons == ["no node of cluster gone answered; is it running?"]


def _member(daemon_cluster: cluster_harness.Cluster, name: str, ask=None) -> dict:
    live = ask or next(n for n in daemon_cluster.live_nodes() if n.name != name)
    view = daemon_cluster.cluster_view(live)
    return next(n for n in view["nodes"] if n["name"] == name)
