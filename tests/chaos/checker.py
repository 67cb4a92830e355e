"""The robustness run's checker: the shared history checker
(`daemon.localcluster.checker`, which the console's drills use too) applied to a test
cluster's nodes.

Every acknowledged execution is on every node exactly once, no node holds an
execution no client was answered about beyond those in flight (ids the writer
sent but got no answer for may land: a timeout can hide a commit), and once
healed every node has the same applied index and digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from daemon.localcluster.checker import check_history
from tests.chaos.cluster_ops import execution_ids
from tests.cluster_harness import Cluster


def check_executions(
    cluster: Cluster,
    acked: list[str],
    allowed_unacked: int | None = None,
    mirrored: Iterable[tuple[int, str]] | None = None,
) -> dict[str, Any]:
    """The verdict as JSON: `ok`, each check, per node the records, acknowledged ids
    missing, ids held twice and ids no client was told about (`allowed_unacked` bounds
    the last: the writer's failed or timed-out requests, which may still have
    committed). `mirrored`: the console's (seq, id) pairs, compared with the feed."""
    alive = [node for node in cluster.nodes if node.alive]
    feeds = {node.name: execution_ids(cluster, node) for node in alive}
    points = {}
    for node in alive:
        view = cluster.get(node, "/health/node").json()
        points[node.name] = (view["appliedIndex"], view["digest"])
    daemon_history = None
    if mirrored is not None and alive:
        daemon_history = _history(cluster, alive[0])
    verdict = check_history(
        acked,
        feeds,
        allowed_unacked=allowed_unacked,
        points=points,
        daemon_history=daemon_history,
        mirrored_history=mirrored,
    )
    return verdict.as_json()


def _history(cluster: Cluster, node: Any) -> list[tuple[int, str]]:
    pairs: list[tuple[int, str]] = []
    after = 0
    while True:
        page = cluster.get(node, f"/executions?after={after}&limit=1000").json()
        pairs.extend((r["seq"], r["id"]) for r in page["executions"])
        if not page["executions"]:
            return pairs
        after = page["nextAfter"]
