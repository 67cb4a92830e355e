"""Live reads of a daemon cluster for preflight and actions: never only the DB's copy,
which is as old as the collector's last poll.

All daemon traffic goes through `console.clusters.daemon_client` (short timeouts, one
line errors), so a node that does not answer costs a timeout, never a hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.clusters.daemon_client import DaemonClient, DaemonError, node_urls
from console.clusters.models import Cluster


@dataclass(frozen=True)
class Member:
    name: str
    http_url: str
    role: str
    reachable: bool
    draining: bool
    lag_ms: float | None
    lag_entries: int | None


@dataclass(frozen=True)
class ClusterView:
    """One node's /health/cluster answer: membership, leader and each member's lag."""

    leader: str | None
    has_quorum: bool
    size: int
    members: dict[str, Member]
    answered_by: str

    @property
    def quorum(self) -> int:
        return self.size // 2 + 1


def client_for(cluster: Cluster) -> DaemonClient:
    return DaemonClient(cluster)


def read_view(cluster: Cluster, client: DaemonClient) -> ClusterView | None:
    """The cluster as the first answering node sees it, or None if no node answers."""
    for url in node_urls(cluster):
        try:
            body = client.get(url, "/health/cluster")
        except DaemonError:
            continue
        return _parse_view(body)
    return None


def _parse_view(body: dict[str, Any]) -> ClusterView:
    members = {
        entry["name"]: Member(
            name=entry["name"],
            http_url=(entry.get("httpUrl") or "").rstrip("/"),
            role=entry.get("role") or "unknown",
            reachable=bool(entry.get("reachable")),
            draining=bool(entry.get("draining")),
            lag_ms=entry.get("lagMs"),
            lag_entries=entry.get("lagEntries"),
        )
        for entry in body.get("nodes", [])
    }
    return ClusterView(
        leader=body.get("leader"),
        has_quorum=bool(body.get("hasQuorum")),
        size=int(body.get("clusterSize") or len(members)),
        members=members,
        answered_by=body.get("node") or "",
    )


def probe(client: DaemonClient, member: Member) -> tuple[dict[str, Any] | None, str | None]:
    """The member's own /health/node, asked directly: (view, None) or (None, why not).

    The cluster view says whether its peers see the node; the console (and the worker)
    must reach it too, since that is where the admin calls go."""
    if not member.http_url:
        return None, f"node {member.name} unreachable: its HTTP address is unknown"
    try:
        return client.get(member.http_url, "/health/node"), None
    except DaemonError as err:
        return None, f"node {member.name} unreachable: {err}"
