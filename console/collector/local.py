"""The cluster `manage.py up` starts on this machine, registered so the console watches
it with no setup: node i answers on DAEMON_HTTP_PORT + i."""

from __future__ import annotations

from django.conf import settings

from console.clusters.models import Cluster

LOCAL_CLUSTER = "local"
LOCAL_NODES = 3


def local_seed_urls() -> list[str]:
    first = int(settings.DAEMON_HTTP_PORT)
    return [f"http://127.0.0.1:{first + i}" for i in range(LOCAL_NODES)]


def ensure_local_cluster() -> tuple[Cluster, bool]:
    """The `local` cluster, created if missing; an existing row is left as the admin set it."""
    return Cluster.objects.get_or_create(
        name=LOCAL_CLUSTER,
        defaults={
            "description": "daemon cluster on this machine (manage.py up)",
            "seed_urls": local_seed_urls(),
            "token_env": "DAEMON_TOKEN",
            "node_manager": "local",
        },
    )
