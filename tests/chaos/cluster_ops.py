"""Small cluster moves and reads the chaos scenarios share."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.cluster_harness import Cluster, Node, wait_for

NOOP = {"id": "noop-op", "name": "noop", "handler": {"kind": "noop"}}


def lowest_raft_address(cluster: Cluster) -> Node:
    """The node every peer dials (pysyncobj connects from higher to lower address),
    so cutting its own port cuts all of its links."""
    return min(cluster.nodes, key=lambda n: n.raft_address)


def make_leader(cluster: Cluster, node: Node) -> None:
    def leads() -> bool:
        if cluster.leader().name == node.name:
            return True
        cluster.post(node, "/admin/transfer-leader", json={"target": node.name})
        return False

    wait_for(leads, timeout=30, interval=0.5, what=f"{node.name} to lead")


def execution_ids(cluster: Cluster, node: Node) -> list[str]:
    ids: list[str] = []
    after = 0
    while True:
        page = cluster.get(node, f"/executions?after={after}&limit=1000").json()
        ids.extend(r["id"] for r in page["executions"])
        if not page["executions"]:
            return ids
        after = page["nextAfter"]


def node_views(cluster: Cluster) -> dict[str, dict]:
    views = {}
    for node in cluster.nodes:
        view = cluster.get(node, "/health/node").json()
        ready = cluster.get(node, "/health/ready").status_code == 200
        views[node.name] = {
            k: view[k] for k in ("role", "term", "commitIndex", "appliedIndex", "lastLogIndex")
        } | {"digest": view["digest"][:12], "ready": ready}
    return views


def converged(cluster: Cluster) -> bool:
    views = [cluster.get(n, "/health/node").json() for n in cluster.nodes]
    return len({(v["appliedIndex"], v["digest"]) for v in views}) == 1


def wait_until(condition: Any, timeout_s: float, interval_s: float = 0.1) -> float | None:
    """Seconds until condition() held, or None if it never did within timeout_s
    (a measurement, unlike the harness's wait_for, which fails)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if condition():
                return time.monotonic() - started
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        time.sleep(interval_s)
    return None
