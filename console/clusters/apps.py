from django.apps import AppConfig


class ClustersConfig(AppConfig):
    """The inventory: Cluster, Node, Sample and mirrored Execution rows, the overview
    and the daemon client. Everything else stands on it."""

    name = "console.clusters"
    label = "clusters"
