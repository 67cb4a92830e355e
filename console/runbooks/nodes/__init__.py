"""Node managers (see `base.NodeManager`): the Cluster row names which one drives it."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from console.clusters.models import Cluster
from console.releases.services import envs_dir
from console.runbooks.nodes.base import NodeManager, NodeManagerError, NodeState, StartResult
from console.runbooks.nodes.local import LocalNodeManager

__all__ = ["NodeManager", "NodeManagerError", "NodeState", "StartResult", "manager_for"]


def local_cluster_dir() -> Path:
    """Where the local cluster's layout lives (`manage.py up`: var/cluster)."""
    configured = getattr(settings, "LOCAL_CLUSTER_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "cluster"


def manager_for(cluster: Cluster) -> NodeManager:
    if cluster.node_manager == "kubernetes":
        # Imported here: the kubernetes client is large, and only these clusters need it.
        from console.runbooks.nodes.kubernetes import manager_from_cluster

        return manager_from_cluster(cluster)
    if cluster.node_manager != "local":
        raise NodeManagerError(
            f"cluster {cluster.name} is managed by {cluster.node_manager!r}, which this "
            "console cannot drive; only local and Kubernetes clusters can be restarted or scaled"
        )
    manager = LocalNodeManager(local_cluster_dir(), envs_dir())
    # The layout on this machine must be this cluster's: never start or stop the nodes
    # of another cluster because a row says "local".
    known = {url.rstrip("/") for url in cluster.seed_urls or []}
    known |= {url.rstrip("/") for url in cluster.nodes.values_list("http_url", flat=True)}
    layout = manager.layout()
    if not known & {spec.url for spec in layout.nodes}:
        raise NodeManagerError(
            f"the local layout in {layout.root} runs other nodes than cluster {cluster.name}'s; "
            "this console cannot manage that cluster's processes"
        )
    return manager
