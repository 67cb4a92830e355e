"""What a cluster looks like right now, from the collector's rows: for pages and snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.clusters.models import Cluster, Node
from daemon import contract

# A value not refreshed for this long is shown as stale (the collector polls every second).
STALE_AFTER_S = 5


@dataclass
class Overview:
    cluster: Cluster
    nodes: list[Node]

    @property
    def leader(self) -> Node | None:
        return next((n for n in self.nodes if n.name == self.cluster.leader_name), None)

    @property
    def size(self) -> int:
        return self.cluster.cluster_size or len(self.nodes)

    @property
    def majority(self) -> int:
        return contract.quorum_size(self.size)

    @property
    def reachable(self) -> int:
        return sum(1 for n in self.nodes if n.reachable)

    @property
    def fault_tolerance(self) -> int:
        return contract.fault_tolerance(self.size, self.reachable)

    @property
    def can_lose(self) -> str:
        count = self.fault_tolerance
        return f"can lose {count} node{'' if count == 1 else 's'}"


def overview_of(cluster: Cluster) -> Overview:
    return Overview(cluster=cluster, nodes=list(cluster.nodes.filter(removed=False)))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def summary(cluster: Cluster) -> dict[str, Any]:
    """A JSON-ready picture of the cluster: the websocket snapshot sends it."""
    view = overview_of(cluster)
    return {
        "name": cluster.name,
        "leader": cluster.leader_name or None,
        "term": cluster.term,
        "commit_index": cluster.commit_index,
        "has_quorum": cluster.has_quorum,
        "cluster_size": view.size,
        "fault_tolerance": view.fault_tolerance,
        "replication_lag_ms": cluster.replication_lag_ms,
        "last_polled_at": _iso(cluster.last_polled_at),
        "nodes": [
            {
                "name": n.name,
                "role": n.role,
                "leader": n.name == cluster.leader_name,
                "reachable": n.reachable,
                "term": n.term,
                "commit_index": n.commit_index,
                "lag_ms": n.lag_ms,
                "version": n.version,
                "draining": n.draining,
                "last_seen_at": _iso(n.last_seen_at),
                "last_polled_at": _iso(n.last_polled_at),
            }
            for n in view.nodes
        ],
    }
