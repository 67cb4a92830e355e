"""The node lifecycle actions end to end: a real worker, a real cluster, its node manager."""

from __future__ import annotations

import pytest

from console.clusters.models import Cluster
from console.runbooks import records, services
from console.runbooks.models import RunbookRun
from console.runbooks.nodes import manager_for
from tests import cluster_harness
from tests.conftest import wait_for
from tests.console.runbooks.lifecycle_support import SteadyWriter
from tests.console.runbooks.test_worker import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]


def request(cluster: Cluster, action: str, params: dict, user: object) -> RunbookRun:
    outcome = services.request_run(cluster, action, params, user)
    assert outcome.run is not None and outcome.run.status == "queued", outcome
    return outcome.run


def other_urls(daemon_cluster: cluster_harness.Cluster, name: str) -> list[str]:
    return [n.url for n in daemon_cluster.nodes if n.name != name]


def test_restarting_the_leader_moves_leadership_first_and_a_steady_writer_sees_no_failure(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    leader = daemon_cluster.leader()
    pid_before = leader.process.pid
    writer = SteadyWriter(lambda: other_urls(daemon_cluster, leader.name)).start()

    run = request(managed, "restart_node", {"node": leader.name}, operator)

    assert finished(run, 180).status == "succeeded", run.error
    writer.stop()
    steps = {s.position: s for s in run.steps.all()}
    assert steps[2].detail["changed"] is True and steps[2].detail["leader"] != leader.name
    state = manager_for(managed).status(leader.name)
    assert state.running and state.pid != pid_before
    assert daemon_cluster.leader().name != leader.name
    health = daemon_cluster.get(leader, "/health/node").json()
    assert health["draining"] is False
    print(f"writer: {writer.ok} ok, {writer.retried} retried 503s, {len(writer.failures)} failed")
    assert writer.ok > 50 and writer.failures == [], writer.failures[:5]


def test_stopping_a_node_is_refused_when_the_others_would_lose_quorum(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    first, second = [n for n in daemon_cluster.nodes if n is not daemon_cluster.leader()][:2]
    run = request(managed, "stop_node", {"node": first.name}, operator)
    assert finished(run, 60).status == "succeeded", run.error
    assert not manager_for(managed).status(first.name).running

    refused = services.request_run(managed, "stop_node", {"node": second.name}, operator)

    assert refused.run is None or refused.run.status == "refused"
    assert any("quorum" in reason for reason in refused.reasons), refused.reasons
    assert manager_for(managed).status(second.name).running


def test_an_operator_stopped_node_stays_stopped_until_start_node_brings_it_back(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    node = next(n for n in daemon_cluster.nodes if n is not daemon_cluster.leader())
    assert finished(request(managed, "stop_node", {"node": node.name}, operator)).status == (
        "succeeded"
    )
    assert manager_for(managed).status(node.name).stopped_by_operator

    run = request(managed, "start_node", {"node": node.name}, operator)

    assert finished(run, 120).status == "succeeded", run.error
    state = manager_for(managed).status(node.name)
    assert state.running and not state.stopped_by_operator
    assert daemon_cluster.get(node, "/health/startup").status_code == 200


def test_scaling_3_to_5_and_back_to_3_under_a_steady_writer_fails_no_execution(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    first = daemon_cluster.nodes[0]
    writer = SteadyWriter(lambda: [first.url]).start()

    up = request(managed, "scale", {"to": 5}, operator)
    assert finished(up, 300).status == "succeeded", up.error
    view = daemon_cluster.cluster_view(first)
    assert view["clusterSize"] == 5
    assert all(member["reachable"] for member in view["nodes"]), view

    down = request(managed, "scale", {"to": 3}, operator)
    assert finished(down, 300).status == "succeeded", down.error
    writer.stop()
    view = daemon_cluster.cluster_view(first)
    assert view["clusterSize"] == 3
    assert sorted(manager_for(managed).names()) == sorted(n["name"] for n in view["nodes"])
    print(f"writer: {writer.ok} ok, {writer.retried} retried 503s, {len(writer.failures)} failed")
    assert writer.ok > 50 and writer.failures == [], writer.failures[:5]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"to": 2}, "at least 3"),
        ({"to": 3}, "already has 3"),
        ({"to": 99}, "at most"),
    ],
)
def test_a_scale_below_3_or_to_the_current_size_is_refused_with_the_reason(
    managed: Cluster, operator, params: dict, reason: str
) -> None:
    outcome = services.request_run(managed, "scale", params, operator)

    assert outcome.run is None or outcome.run.status == "refused"
    assert any(reason in r for r in outcome.reasons), outcome.reasons


def test_a_restart_on_an_unknown_release_is_refused_and_changes_nothing(
    managed: Cluster, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    node = daemon_cluster.nodes[1]
    pid = manager_for(managed).status(node.name).pid

    outcome = services.request_run(
        managed, "restart_node", {"node": node.name, "release": "no-such"}, operator
    )

    assert any("unknown release 'no-such'" in r for r in outcome.reasons), outcome.reasons
    assert manager_for(managed).status(node.name).pid == pid


def test_a_worker_killed_mid_restart_goes_stale_and_a_resumed_run_finishes_the_restart(
    managed: Cluster,
    start_worker,
    daemon_cluster: cluster_harness.Cluster,
    operator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first_worker = start_worker()
    node = next(n for n in daemon_cluster.nodes if n is not daemon_cluster.leader())
    run = request(managed, "restart_node", {"node": node.name}, operator)
    wait_for(
        lambda: run.steps.filter(position=4, status__in=["running", "succeeded"]).exists(),
        120,
        "the restart to reach its start step",
    )
    first_worker.kill()
    monkeypatch.setenv("RUNBOOK_STALE_AFTER_S", "2")
    wait_for(
        lambda: records.reap_stale_runs() or RunbookRun.objects.get(id=run.id).status == "stale",
        30,
        "the reaper",
    )
    run.refresh_from_db()
    assert run.status == "stale"  # never reported as succeeded half-done

    start_worker()
    services.resume_run(run.id, operator)

    assert finished(run, 180).status == "succeeded", run.error
    assert [s.attempts for s in run.steps.order_by("position")][:3] == [1, 1, 1]
    assert manager_for(managed).status(node.name).running
    assert daemon_cluster.get(node, "/health/node").json()["draining"] is False
