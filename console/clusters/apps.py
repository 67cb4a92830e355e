from django.apps import AppConfig


class ClustersConfig(AppConfig):
    """Clusters and their nodes: the dashboard now; models, collector, node managers later."""

    name = "console.clusters"
    label = "clusters"
