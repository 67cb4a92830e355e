"""Executor behaviour through the HTTP API of a real cluster: drain, 429, timeouts, cache."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.cluster_harness import Cluster, wait_for

pytestmark = pytest.mark.cluster


def in_background(cluster: Cluster, node, path: str) -> tuple[threading.Thread, list]:
    result: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: result.append(cluster.post(node, path, timeout=30)))
    thread.start()
    return thread, result


def test_drain_refuses_new_work_finishes_in_flight_and_fails_readiness(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    cluster.define(node, {"id": "slow", "name": "slow", "handler": {"kind": "sleep", "ms": 1500}})
    thread, result = in_background(cluster, node, "/execute/slow")
    wait_for(lambda: cluster.get(node, "/queue").json()["active"] == 1, what="one running")

    drained = cluster.post(node, "/admin/drain")
    assert drained.status_code == 200 and drained.json()["draining"] is True
    refused = cluster.post(node, "/execute/slow")
    assert refused.status_code == 503
    assert "draining" in refused.json()["error"]
    ready = cluster.get(node, "/health/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "draining"

    thread.join(timeout=30)
    assert result[0].status_code == 200
    assert result[0].json()["status"] == "success"
    # The cluster view shows the drained node.
    view = cluster.cluster_view(cluster.nodes[1])
    assert next(n for n in view["nodes"] if n["name"] == node.name)["draining"] is True

    assert cluster.post(node, "/admin/undrain").json()["draining"] is False
    assert cluster.get(node, "/health/ready").status_code == 200
    assert cluster.post(node, "/execute/slow").status_code == 200


def test_full_queue_answers_429_with_retry_after(make_cluster) -> None:
    cluster: Cluster = make_cluster(overrides={"maxConcurrent": 1, "queueSize": 1})
    node = cluster.nodes[0]
    cluster.define(node, {"id": "slow", "name": "slow", "handler": {"kind": "sleep", "ms": 2000}})
    running = [in_background(cluster, node, "/execute/slow") for _ in range(2)]

    def full() -> bool:
        queue = cluster.get(node, "/queue").json()
        return queue["active"] == 1 and queue["queued"] == 1

    wait_for(full, what="one running and one queued")
    response = cluster.post(node, "/execute/slow")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    for thread, result in running:
        thread.join(timeout=30)
        assert result[0].status_code == 200


def test_an_execution_past_its_timeout_is_recorded_as_timeout(cluster: Cluster) -> None:
    node = cluster.nodes[1]
    cluster.define(
        node,
        {
            "id": "stuck",
            "name": "stuck",
            "handler": {"kind": "sleep", "ms": 5000},
            "timeoutMs": 100,
        },
    )
    record = cluster.post(node, "/execute/stuck").json()
    assert record["status"] == "timeout"
    assert cluster.get(node, "/operations/stuck/history").json()[-1]["status"] == "timeout"
    metrics = cluster.get(node, "/metrics").json()
    assert metrics["errorCount"] == 1


def test_cached_operation_is_served_from_cache_and_counted(cluster: Cluster) -> None:
    node = cluster.nodes[2]
    cluster.define(
        node, {"id": "cached", "name": "c", "handler": {"kind": "noop"}, "cacheTtlMs": 60_000}
    )
    first = cluster.post(node, "/execute/cached").json()
    second = cluster.post(node, "/execute/cached").json()
    assert first["cached"] is False and second["cached"] is True
    metrics = cluster.get(node, "/metrics").json()
    assert metrics["cacheHits"] == 1 and metrics["cacheMisses"] == 1
    assert metrics["cacheSize"] == 1 and metrics["cacheHitRate"] == 50


def test_leadership_moves_to_the_named_node(cluster: Cluster) -> None:
    leader = cluster.leader()
    target = next(n for n in cluster.nodes if n is not leader)
    # Sent to a follower on purpose: it forwards to the leader.
    via = next(n for n in cluster.nodes if n not in (leader, target))
    response = cluster.post(via, "/admin/transfer-leader", json={"target": target.name})
    assert response.status_code == 200, response.text
    assert response.json()["leader"] == target.name
    assert cluster.leader() is target
