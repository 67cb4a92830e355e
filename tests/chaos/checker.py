"""The checker: judges a run only by what clients were told.

Every acknowledged execution is on every node exactly once, no node holds an
execution no client was answered about beyond those in flight (ids the writer
sent but got no answer for may land: a timeout can hide a commit), and once
healed every node has the same applied index and digest.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.chaos.cluster_ops import execution_ids
from tests.cluster_harness import Cluster


def check_executions(
    cluster: Cluster, acked: list[str], allowed_unacked: int | None = None
) -> dict[str, Any]:
    """Per node: records, acknowledged ids missing, ids held twice, and ids no
    client was told about. `allowed_unacked` bounds the last (the writer's
    failed or timed-out requests, which may still have committed)."""
    acked_set = set(acked)
    per_node: dict[str, Any] = {}
    holdings = {}
    for node in cluster.nodes:
        if not node.alive:
            continue
        ids = execution_ids(cluster, node)
        counts = Counter(ids)
        holdings[node.name] = frozenset(counts)
        per_node[node.name] = {
            "records": len(ids),
            "missingAcked": len(acked_set - counts.keys()),
            "duplicated": sum(1 for c in counts.values() if c > 1),
            "unacked": len(counts.keys() - acked_set),
        }
    same = len(set(holdings.values())) <= 1
    ok = same and all(
        v["missingAcked"] == 0
        and v["duplicated"] == 0
        and (allowed_unacked is None or v["unacked"] <= allowed_unacked)
        for v in per_node.values()
    )
    return {"ok": ok, "sameIdsOnEveryNode": same, "nodes": per_node, "acked": len(acked_set)}
