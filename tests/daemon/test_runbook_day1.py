"""The runbook's Day-1 checks, as an operator pastes them (curl | jq), against a real cluster."""

from __future__ import annotations

import pytest

from tests.cluster_harness import Cluster
from tests.daemon.conftest import RUNBOOK_OP

pytestmark = pytest.mark.cluster


def test_startup_probe_reports_ready(cluster: Cluster) -> None:
    for node in cluster.nodes:
        response = cluster.get(node, "/health/startup")
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}


def test_cluster_health_names_three_nodes_and_a_leader_by_name(cluster: Cluster) -> None:
    leader = cluster.leader()
    view = cluster.cluster_view(cluster.nodes[0])
    assert view["clusterSize"] == 3
    assert view["leader"] == leader.name
    assert view["leader"].startswith("unrdf-daemon-")
    assert view["hasQuorum"] is True
    assert view["faultTolerance"] == 1
    assert {n["name"] for n in view["nodes"]} == {n.name for n in cluster.nodes}
    for node in view["nodes"]:
        assert node["reachable"] is True
        for key in ("role", "matchIndex", "lagEntries", "lagMs", "draining", "version", "digest"):
            assert key in node


def test_day1_step4_defines_executes_and_reports_history_and_metrics(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    created = cluster.define(node, RUNBOOK_OP)
    assert created.status_code == 201, created.text
    assert created.json()["handler"] == {
        "kind": "log",
        "message": 'console.log("success")',
        "level": "info",
    }

    executed = cluster.post(node, "/execute/test-op")
    assert executed.status_code == 200, executed.text

    history = cluster.get(node, "/operations/test-op/history").json()
    last = history[-1]  # jq '.[-1]'
    assert last["status"] == "success"
    assert isinstance(last["duration"], int | float) and last["duration"] >= 0
    assert last["id"] == executed.json()["id"]

    metrics = cluster.get(node, "/metrics").json()
    assert metrics["totalOperations"] == 1
    assert metrics["successRate"] == 100


def test_a_write_on_a_follower_is_readable_on_every_node(cluster: Cluster) -> None:
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    assert cluster.define(follower, RUNBOOK_OP).status_code == 201
    record = cluster.post(follower, "/execute/test-op").json()
    assert record["node"] == follower.name
    cluster.wait_converged()
    for node in cluster.nodes:
        assert cluster.get(node, "/operations/test-op").status_code == 200
        ids = [r["id"] for r in cluster.get(node, "/operations/test-op/history").json()]
        assert ids == [record["id"]]


def test_monthly_review_fields_answer_the_runbook_jq(cluster: Cluster) -> None:
    node = cluster.nodes[1]
    cluster.define(node, RUNBOOK_OP)
    cluster.post(node, "/execute/test-op")
    month = cluster.get(node, "/metrics/month").json()
    for key in ("totalOperations", "successRate", "avgDuration", "p95Duration", "errorCount"):
        assert key in month
    # jq's `clusterHealth: {replicationLag, failoverCount, uptime}` reads top-level keys.
    for key in ("replicationLag", "failoverCount", "uptime"):
        assert month[key] is not None
        assert month["clusterHealth"][key] == month[key]
    week = cluster.get(node, "/metrics/7d").json()
    assert week["successRate"] == 100


def test_prometheus_format_is_served_when_asked_for(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    cluster.define(node, RUNBOOK_OP)
    cluster.post(node, "/execute/test-op")
    text = cluster.get(node, "/metrics", headers={"Accept": "text/plain"})
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    body = text.text
    assert "daemon_operations_failed_total" in body
    assert "daemon_operation_duration_ms_bucket" in body
    leader = cluster.leader()
    assert (
        "daemon_raft_replication_lag_ms"
        in cluster.get(leader, "/metrics", headers={"Accept": "text/plain"}).text
    )


def test_a_definition_is_usable_at_once_on_every_other_node(cluster: Cluster) -> None:
    """The runbook's curl lines go through a Service: define and execute may land on
    different pods. A node that lags must catch up before it answers 404."""
    for i in range(20):
        op_id = f"fresh-{i}"
        defined_on, used_on = cluster.nodes[i % 3], cluster.nodes[(i + 1) % 3]
        body = {"id": op_id, "name": op_id, "handler": {"kind": "noop"}}
        assert cluster.define(defined_on, body).status_code == 201
        executed = cluster.post(used_on, f"/execute/{op_id}")
        assert executed.status_code == 200, executed.text
        history = cluster.get(cluster.nodes[(i + 2) % 3], f"/operations/{op_id}/history")
        assert history.status_code == 200, history.text
