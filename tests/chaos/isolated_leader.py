"""Scenario (CheckQuorum): the leader's Raft traffic is dropped, so it can reach no
peer; it must step down within about an election timeout, answer writes 503 at
once, and, once healed, rejoin without deposing the new leader (no flapping).

    python -m tests.chaos.isolated_leader BASE_DIR [--drop-s 6]

Prints one JSON line. Run it through `netns.run_in_private_netns`, which starts it in
network and PID namespaces of its own (it refuses to run in the caller's).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.chaos import netns
from tests.chaos.cluster_ops import NOOP, lowest_raft_address, make_leader
from tests.chaos.writer import Writer
from tests.cluster_harness import ADMIN_TOKEN, Cluster, Node, wait_for

CLIENT_TIMEOUT_S = 3.0


class Prober:
    """One client writing to one node only, timing every answer."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.answers: list[tuple[float, float, int | str]] = []  # (sent, seconds, status)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(timeout=CLIENT_TIMEOUT_S, headers=headers) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    status: int | str = client.post(f"{self.node.url}/execute/noop-op").status_code
                except httpx.TimeoutException:
                    status = "timeout"
                self.answers.append((sent, time.monotonic() - sent, status))
                time.sleep(0.02)

    def failures_sent_after(self, moment: float) -> list[tuple[float, int | str]]:
        return [
            (round(s, 3), status) for at, s, status in self.answers if at > moment and status != 200
        ]


def leadership(cluster: Cluster, nodes: list[Node]) -> set[tuple[str | None, int]]:
    views = [cluster.get(n, "/health/node", timeout=2).json() for n in nodes]
    return {(v["leader"], v["term"]) for v in views}


def run(base_dir: Path, drop_s: float, watch_s: float) -> dict[str, Any]:
    cluster = Cluster(base_dir, size=3)
    cut: netns.RaftCut | None = None
    try:
        cluster.start()
        assert cluster.define(cluster.nodes[0], NOOP).status_code in (200, 201)
        target = lowest_raft_address(cluster)
        make_leader(cluster, target)
        others = [n for n in cluster.nodes if n is not target]
        term_before = cluster.get(target, "/health/node").json()["term"]
        prober = Prober(target)
        with Writer([n.url for n in others], NOOP["id"], ADMIN_TOKEN) as writer:
            prober.thread.start()
            wait_for(lambda: writer.count() >= 100, what="100 acknowledged before the cut")
            cut = netns.RaftCut(target.raft_port)
            cut_at = time.monotonic()
            cut.drop()
            step_down_s = new_leader_s = None
            while time.monotonic() - cut_at < drop_s and None in (step_down_s, new_leader_s):
                elapsed = time.monotonic() - cut_at
                if (
                    step_down_s is None
                    and cluster.get(target, "/health/node", timeout=1).json()["role"] != "leader"
                ):
                    step_down_s = elapsed
                if new_leader_s is None and {n for n, _ in leadership(cluster, others)} - {
                    None,
                    target.name,
                }:
                    new_leader_s = elapsed
                time.sleep(0.02)
            stepped_down_at = cut_at + (step_down_s or drop_s)
            time.sleep(max(0.0, drop_s - (time.monotonic() - cut_at)))
            during = cluster.get(target, "/health/node").json()
            prober.stop.set()
            prober.thread.join(timeout=10)
            majority = leadership(cluster, others)
            healed_at = time.monotonic()
            cut.heal()
            # Watch the leadership for a while: it must not change.
            seen_by_majority: set[tuple[str | None, int]] = set()
            rejoined_s = None
            while time.monotonic() - healed_at < watch_s:
                seen_by_majority |= leadership(cluster, others)
                if rejoined_s is None and leadership(cluster, cluster.nodes) == majority:
                    rejoined_s = time.monotonic() - healed_at
                time.sleep(0.05)
            final = leadership(cluster, cluster.nodes)
            acked_after_heal = writer.first_ack_after(healed_at)
        slow_after_step_down = [
            s for at, s, status in prober.answers if at > stepped_down_at and status != 200
        ]
        return {
            "stepDownAfterS": step_down_s,
            "newLeaderAfterS": new_leader_s,
            "termBefore": term_before,
            "isolatedNodeDuringCut": {
                k: during[k] for k in ("role", "leader", "term", "hasQuorum")
            },
            "majorityLeadership": sorted(map(list, majority)),
            "majoritySawAfterHeal": sorted(map(list, seen_by_majority), key=str),
            "allAgreeAtEnd": sorted(map(list, final), key=str),
            "rejoinedAfterHealS": rejoined_s,
            "firstAckAfterHealS": acked_after_heal,
            "writesToIsolatedAfterStepDown": len(slow_after_step_down),
            "slowestAnswerAfterStepDownS": max(slow_after_step_down, default=None),
            "isolatedAnswersDuringCut": prober.failures_sent_after(cut_at)[:5],
            "outcomes": dict(writer.outcomes),
        }
    finally:
        if cut is not None:
            cut.heal()
        cluster.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_dir", type=Path)
    parser.add_argument("--drop-s", type=float, default=6.0)
    parser.add_argument("--watch-s", type=float, default=5.0)
    args = parser.parse_args()
    netns.enter()
    print(json.dumps(run(args.base_dir, args.drop_s, args.watch_s)))


if __name__ == "__main__":
    main()
