"""The drills end to end: a real worker, a real three-node cluster, its node manager."""

from __future__ import annotations

import subprocess

import pytest

from console.clusters.models import Cluster
from console.events.models import Event
from console.runbooks import services
from console.runbooks.models import RunbookRun
from console.runbooks.nodes import manager_for, partition
from tests import cluster_harness
from tests.conftest import wait_for
from tests.console.runbooks.conftest import user_with_role
from tests.console.runbooks.drill_collector import collector  # noqa: F401 (fixture)
from tests.console.runbooks.test_worker import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]


def request(cluster: Cluster, action: str, params: dict, user: object) -> RunbookRun:
    outcome = services.request_run(cluster, action, params, user)
    assert outcome.run is not None and outcome.run.status == "queued", outcome
    return outcome.run


def judged(run: RunbookRun) -> dict:
    steps = {s.position: s.detail for s in run.steps.all()}
    return steps[max(steps)]


def checks(verdict: dict) -> dict[str, bool]:
    return {c["name"]: c["ok"] for c in verdict["checks"]}


# The shared checker's, on what the drill's writer was told, and the console's mirror.
HISTORY_CHECKS = {
    "every acknowledged execution on every node",
    "no execution held twice",
    "no execution no client was told about",
    "the same executions on every node",
    "equal applied index and digest on every node",
    "the console's mirrored history equals the daemon's",
}
MIRROR = "the console's mirrored history equals the daemon's"


@pytest.mark.usefixtures("collector")
def test_killing_the_leader_elects_another_within_the_expectation_and_loses_no_write(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    leader = daemon_cluster.leader()
    pid_before = manager_for(managed).status(leader.name).pid

    run = request(managed, "drill_kill_leader", {}, operator)

    assert finished(run, 240).status == "succeeded", run.error
    steps = {s.position: s.detail for s in run.steps.all()}
    assert steps[1]["expectation"]["recovery_s"] == 10.0
    measured = steps[2]
    assert measured["killed"] == leader.name and measured["newLeader"] != leader.name
    assert 0 < measured["recoveryS"] <= 30
    assert measured["writer"]["acknowledged"] > 10 and measured["writer"]["lost"] == 0
    verdict = judged(run)
    assert verdict["verdict"] in ("pass", "fail") and verdict["why"]
    assert verdict["verdict"] == "pass", verdict
    assert verdict["verified"]["nodes"] == 3
    # Each check reported: the history's, then the events and the alert it announced.
    assert checks(verdict) == {
        **dict.fromkeys(HISTORY_CHECKS, True),
        "event leader.changed": True,
        f"event node.unreachable about {leader.name}": True,
        f"event node.recovered about {leader.name}": True,
        "alert cluster_size raised": True,
    }, verdict["checks"]
    state = manager_for(managed).status(leader.name)
    assert state.running and state.pid != pid_before
    judged_event = Event.objects.get(kind="drill.judged")
    assert judged_event.payload["verdict"] == "pass" and judged_event.payload["lost"] == 0


@pytest.mark.usefixtures("collector")
def test_pausing_a_follower_keeps_quorum_and_the_node_resumes_and_catches_up(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    follower = next(n for n in daemon_cluster.nodes if n is not daemon_cluster.leader())
    pid = manager_for(managed).status(follower.name).pid

    run = request(managed, "drill_pause_node", {"node": follower.name, "seconds": 3}, operator)

    assert finished(run, 240).status == "succeeded", run.error
    measured = {s.position: s.detail for s in run.steps.all()}[2]
    assert measured["paused"] == follower.name and measured["quorumKept"] is True
    assert judged(run)["verdict"] == "pass", judged(run)
    # A follower: no leader change is expected, so none is checked.
    assert "event leader.changed" not in checks(judged(run))
    assert checks(judged(run))[f"event node.unreachable about {follower.name}"]
    # The same process came back (SIGCONT), it was not restarted.
    assert manager_for(managed).status(follower.name).pid == pid
    wait_for(lambda: daemon_cluster.get(follower, "/health/ready").status_code == 200, 30)


def test_a_drill_that_no_collector_watched_fails_naming_the_mirror_and_the_missing_events(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    """No collector: nothing journals the node's absence or mirrors the feed, so the
    checks that need them fail (and say why) while the history's own checks pass."""
    follower = next(n for n in daemon_cluster.nodes if n is not daemon_cluster.leader())

    run = request(managed, "drill_pause_node", {"node": follower.name, "seconds": 1}, operator)

    assert finished(run, 300).status == "succeeded", run.error
    verdict = judged(run)
    assert verdict["verdict"] == "fail", verdict
    seen = checks(verdict)
    assert all(seen[name] for name in HISTORY_CHECKS - {MIRROR}), verdict["checks"]
    assert seen[MIRROR] is False and seen["the console mirrored the feed up to its end"] is False
    assert seen[f"event node.unreachable about {follower.name}"] is False
    assert seen["alert cluster_size raised"] is False
    assert "is the collector running?" in verdict["why"]


def test_a_drill_is_refused_when_a_node_is_already_down(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    follower = next(n for n in daemon_cluster.nodes if n is not daemon_cluster.leader())
    manager_for(managed).stop(follower.name)
    wait_for(lambda: not manager_for(managed).status(follower.name).running, 30)

    refused = wait_for(
        lambda: (
            (o := services.request_run(managed, "drill_kill_leader", {}, operator)).reasons and o
        ),
        30,
    )

    assert refused.run is None or refused.run.status == "refused"
    assert any("fault tolerance" in reason for reason in refused.reasons), refused.reasons


def test_a_pause_longer_than_a_minute_is_refused_naming_the_field(
    managed: Cluster, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    node = daemon_cluster.nodes[0].name
    refused = services.request_run(
        managed, "drill_pause_node", {"node": node, "seconds": 600}, operator
    )
    assert refused.run is None or refused.run.status == "refused"
    assert any("seconds" in reason for reason in refused.reasons), refused.reasons


def no_cut_left() -> bool:
    return (
        "console-drill-raft-cut"
        not in subprocess.run(["iptables", "-S"], capture_output=True, text=True, check=True).stdout
    )


@pytest.mark.usefixtures("collector")
def test_partitioning_the_lowest_address_node_heals_it_and_leaves_no_rule_behind(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    run = request(managed, "drill_partition_node", {"seconds": 3}, operator)

    assert finished(run, 240).status == "succeeded", run.error
    steps = {s.position: s.detail for s in run.steps.all()}
    lowest = min(daemon_cluster.nodes, key=lambda n: n.raft_address)
    assert steps[2]["partitioned"] == lowest.name and steps[2]["writer"]["lost"] == 0
    assert judged(run)["verdict"] == "pass", judged(run)
    assert set(checks(judged(run))) >= HISTORY_CHECKS
    assert no_cut_left()


def test_isolate_node_cuts_the_minority_off_and_heal_node_brings_it_back(
    managed: Cluster, celery_worker, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    lowest = min(daemon_cluster.nodes, key=lambda n: n.raft_address)
    try:
        run = request(managed, "isolate_node", {"node": lowest.name}, operator)
        assert finished(run, 120).status == "succeeded", run.error
        assert not no_cut_left()
        assert {s.position: s.detail for s in run.steps.all()}[2]["newLeader"] != lowest.name

        healed = request(managed, "heal_node", {"node": lowest.name}, operator)

        assert finished(healed, 180).status == "succeeded", healed.error
        assert no_cut_left()
    finally:
        partition.heal(manager_for(managed), lowest.name)  # never leave a rule behind


def test_isolating_a_node_a_port_cut_cannot_isolate_is_refused_naming_the_one_it_can(
    managed: Cluster, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    highest = max(daemon_cluster.nodes, key=lambda n: n.raft_address)
    refused = services.request_run(managed, "isolate_node", {"node": highest.name}, operator)
    assert refused.run is None or refused.run.status == "refused"
    assert any("lowest Raft address" in reason for reason in refused.reasons), refused.reasons


def test_filling_a_disk_bigger_than_the_bound_is_refused_before_anything_is_allocated(
    managed: Cluster, daemon_cluster: cluster_harness.Cluster, operator
) -> None:
    node = daemon_cluster.nodes[0]
    refused = services.request_run(
        managed, "drill_fill_disk", {"node": node.name, "max_bytes": 1 << 20}, operator
    )
    assert refused.run is None or refused.run.status == "refused"
    assert any("above the drill's bound" in reason for reason in refused.reasons), refused.reasons
    assert not (daemon_cluster.layout.data_dir(node.name) / "drill-fill").exists()


def test_a_drill_on_a_production_cluster_is_refused_unless_confirmed(
    managed: Cluster, daemon_cluster: cluster_harness.Cluster, operator, settings
) -> None:
    settings.DRILL_PRODUCTION_CLUSTERS = [managed.name]

    admin = user_with_role("ada", "admin")
    refused = services.request_run(managed, "drill_kill_leader", {}, operator, dry_run=True)
    by_operator = services.request_run(
        managed, "drill_kill_leader", {"confirm_production": True}, operator, dry_run=True
    )
    confirmed = services.request_run(
        managed, "drill_kill_leader", {"confirm_production": True}, admin, dry_run=True
    )

    assert any("production" in reason for reason in refused.reasons), refused.reasons
    assert not by_operator.ok
    assert any("needs the admin role" in reason for reason in by_operator.reasons)
    assert confirmed.ok, confirmed.reasons
