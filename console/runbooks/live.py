"""Live reads of a daemon cluster for preflight, gates and actions: never only the DB's
copy, which is as old as the collector's last poll.

The answers are parsed by the daemon's own contract (`daemon.contract`): the view and
its members are `contract.ClusterView` and `contract.Member`, and an answer that breaks
the contract counts as no answer. All daemon traffic goes through
`console.clusters.daemon_client` (short timeouts, one-line errors), so a node that does
not answer costs a timeout, never a hang.
"""

from __future__ import annotations

from console.clusters.daemon_client import DaemonClient, DaemonError, node_urls
from console.clusters.models import Cluster
from daemon.contract import (
    ClusterView,
    ContractError,
    Member,
    NodeHealth,
    parse_cluster_view,
    parse_node_health,
)

__all__ = ["ClusterView", "Member", "NodeHealth", "client_for", "probe", "read_view", "url_of"]


def client_for(cluster: Cluster) -> DaemonClient:
    """The one place runs get their client: tests put a fake cluster's client here."""
    return DaemonClient(cluster)


def read_view(cluster: Cluster, client: DaemonClient) -> ClusterView | None:
    """The cluster as the first node that answers (within the contract) sees it."""
    for url in node_urls(cluster):
        try:
            return parse_cluster_view(client.get(url, "/health/cluster"))
        except (DaemonError, ContractError):
            continue
    return None


def url_of(member: Member) -> str:
    return (member.http_url or "").rstrip("/")


def probe(client: DaemonClient, member: Member) -> tuple[NodeHealth | None, str | None]:
    """The member's own /health/node, asked directly: (health, None) or (None, why not).

    The cluster view says whether its peers see the node; the console (and the worker)
    must reach it too, since that is where the admin calls go."""
    if not url_of(member):
        return None, f"node {member.name} unreachable: its HTTP address is unknown"
    try:
        return parse_node_health(client.get(url_of(member), "/health/node")), None
    except DaemonError as err:
        return None, f"node {member.name} unreachable: {err}"
    except ContractError as err:
        return None, f"node {member.name} gave an answer the console cannot read: {err}"
