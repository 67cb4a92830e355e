"""Concurrent executions share Raft entries, and every one of them is still recorded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.cluster_harness import ADMIN_TOKEN, Cluster

pytestmark = pytest.mark.cluster

CONCURRENT = 60


def test_concurrent_executions_are_committed_in_fewer_raft_entries(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    cluster.define(node, {"id": "many", "name": "many", "handler": {"kind": "noop"}})
    cluster.wait_converged()
    before = cluster.get(node, "/health/node").json()["appliedIndex"]

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(headers=headers, timeout=30) as client, ThreadPoolExecutor(20) as pool:
        responses = list(
            pool.map(lambda _: client.post(f"{node.url}/execute/many"), range(CONCURRENT))
        )
    assert [r.status_code for r in responses] == [200] * CONCURRENT
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == CONCURRENT

    views = cluster.wait_converged()
    entries = views[0]["appliedIndex"] - before
    assert entries < CONCURRENT, f"{entries} log entries for {CONCURRENT} executions"
    history = cluster.get(cluster.nodes[2], "/operations/many/history?limit=1000").json()
    assert {r["id"] for r in history} == ids
    assert sorted(r["seq"] for r in history) == list(range(1, CONCURRENT + 1))
