"""Scenario: the leader's Raft traffic is dropped for a few seconds under a steady
writer, then healed. Prints one JSON line: what clients were told, and what every
node holds afterwards.

    python -m tests.chaos.leader_partition BASE_DIR [--drop-s 6]

Run it through `netns.run_in_private_netns`, which starts it in network and PID
namespaces of its own (it refuses to run in the caller's).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.chaos import netns
from tests.chaos.cluster_ops import (
    NOOP,
    converged,
    execution_ids,
    lowest_raft_address,
    make_leader,
    node_views,
    wait_until,
)
from tests.chaos.writer import Writer
from tests.cluster_harness import ADMIN_TOKEN, Cluster, Node, wait_for

STRANDED_WRITES = 8


class StrandedWrites:
    """Concurrent operation definitions sent to one node (each is its own Raft entry)."""

    def __init__(self, cluster: Cluster, node: Node, count: int) -> None:
        self.answers: Counter[str] = Counter()
        self.threads = [
            threading.Thread(target=self._define, args=(cluster, node, i)) for i in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _define(self, cluster: Cluster, node: Node, i: int) -> None:
        op = {"id": f"stranded-{i}", "name": "stranded", "handler": {"kind": "noop"}}
        try:
            self.answers[str(cluster.define(node, op).status_code)] += 1
        except httpx.HTTPError:
            self.answers["no answer"] += 1

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)


def run(base_dir: Path, drop_s: float, converge_timeout_s: float) -> dict[str, Any]:
    cluster = Cluster(base_dir, size=3, env={"DAEMON_RAFT_TRACE": "1"})
    cut: netns.RaftCut | None = None
    try:
        cluster.start()
        assert cluster.define(cluster.nodes[0], NOOP).status_code in (200, 201)
        target = lowest_raft_address(cluster)
        make_leader(cluster, target)
        others = [n for n in cluster.nodes if n is not target]
        with Writer([n.url for n in cluster.nodes], NOOP["id"], ADMIN_TOKEN) as writer:
            wait_for(lambda: writer.count() >= 200, what="200 acknowledged before the cut")
            cut = netns.RaftCut(target.raft_port)
            cut_at = time.monotonic()
            cut.drop()
            # Writes the cut-off leader appends but cannot replicate: the divergent
            # tail that the new leader must overwrite once healed (the batcher sends
            # one record batch at a time, so the steady writer alone leaves ~none).
            stranded = StrandedWrites(cluster, target, STRANDED_WRITES)
            new_leader_s = wait_until(
                lambda: (
                    {cluster.get(n, "/health/node").json()["leader"] for n in others}
                    - {None, target.name}
                ),
                drop_s,
            )
            time.sleep(max(0.0, drop_s - (time.monotonic() - cut_at)))
            old_leader_during = cluster.get(target, "/health/node").json()
            stranded.join()
            commit_at_heal = max(
                cluster.get(n, "/health/node").json()["commitIndex"] for n in others
            )
            healed_at = time.monotonic()
            cut.heal()
            # How long the old leader takes to apply what the others had committed.
            caught_up_s = wait_until(
                lambda: (
                    cluster.get(target, "/health/node").json()["appliedIndex"] >= commit_at_heal
                ),
                15,
            )
            acked_at_heal = writer.count()
            # Keep writing after the heal: 200 more acknowledged, or 15 s if writes
            # to a node that never caught up keep timing out.
            wait_until(lambda: writer.count() >= acked_at_heal + 200, 15)
        writer_stopped_at = time.monotonic()
        converge_s = wait_until(lambda: converged(cluster), converge_timeout_s)
        acked = writer.acked_ids()
        per_node = {}
        for node in cluster.nodes:
            ids = execution_ids(cluster, node)
            counts = Counter(ids)
            per_node[node.name] = {
                "records": len(ids),
                "missingAcked": len(set(acked) - counts.keys()),
                "duplicated": sum(1 for c in counts.values() if c > 1),
            }
        leader_log = "\n".join(n.log() for n in others)
        trace = [line for line in leader_log.splitlines() if "rejected, hint" in line]
        return {
            "partitioned": target.name,
            "dropS": drop_s,
            "newLeaderAfterS": new_leader_s,
            "firstAckAfterCutS": writer.first_ack_after(cut_at),
            "firstAckAfterHealS": writer.first_ack_after(healed_at),
            "oldLeaderCaughtUpAfterHealS": caught_up_s,
            "oldLeaderDuringCut": {
                k: old_leader_during[k]
                for k in ("role", "leader", "hasQuorum", "term", "commitIndex", "lastLogIndex")
            },
            # Entries the old leader held past its commit index when the cut healed.
            "oldLeaderUncommittedTail": old_leader_during["lastLogIndex"]
            - old_leader_during["commitIndex"],
            "strandedWriteAnswers": dict(stranded.answers),
            # The writer runs on for a while after the heal; convergence is judged
            # once it stops (under writes the nodes are never at one index).
            "convergedAfterWriterStoppedS": None if converge_s is None else round(converge_s, 2),
            "writerStoppedAfterHealS": round(writer_stopped_at - healed_at, 2),
            "converged": converge_s is not None,
            "acked": len(acked),
            "ackedDistinct": len(set(acked)),
            "outcomes": dict(writer.outcomes),
            "slowestFailureS": round(writer.slowest_failure_s, 2),
            "nodes": node_views(cluster),
            "executions": per_node,
            "rejections": len(trace),
            "rejectionSample": trace[:6] + trace[-6:],
            "criticalTruncations": sum(
                n.log().count("truncating already-applied") for n in cluster.nodes
            ),
        }
    finally:
        if cut is not None:
            cut.heal()
        cluster.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_dir", type=Path)
    parser.add_argument("--drop-s", type=float, default=6.0)
    parser.add_argument("--converge-timeout-s", type=float, default=30.0)
    args = parser.parse_args()
    netns.enter()
    print(json.dumps(run(args.base_dir, args.drop_s, args.converge_timeout_s)))


if __name__ == "__main__":
    main()
