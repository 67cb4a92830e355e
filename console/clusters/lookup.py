"""Finding a cluster by name for the API routers of every app above the inventory."""

from __future__ import annotations

from ninja.errors import HttpError

from console.clusters.models import Cluster


def get_cluster(name: str) -> Cluster:
    """The named cluster or a 404; every app's API looks clusters up here."""
    cluster = None
    if "\x00" not in name:  # PostgreSQL cannot compare text holding NUL
        cluster = Cluster.objects.filter(name=name).first()
    if cluster is None:
        raise HttpError(404, f"no cluster named {name!r}")
    return cluster
