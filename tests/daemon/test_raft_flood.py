"""An unauthenticated flood of a follower's Raft port (issue 14, point 3): a 2 GiB length
prefix followed by zeros, from many connections at once, with no Raft secret. Before
the fix the follower's RSS grew by hundreds of MB, a core stayed busy and elections
started; now each connection is cut off early, memory stays flat and the term holds."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from tests.cluster_harness import Cluster, Node

pytestmark = pytest.mark.cluster

FLOOD_S = 6.0
CONNECTIONS = 40


def rss_mb(node: Node) -> float:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def flood(port: int, stop: threading.Event, sent: list[int]) -> None:
    zeros = bytes(256 * 1024)
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(struct.pack("i", 2**31 - 1))
                while not stop.is_set():
                    sock.sendall(zeros)
                    sent[0] += len(zeros)
        except OSError:
            continue  # cut off by the node, as it should be: connect again


def test_flooding_a_followers_raft_port_without_the_secret_is_bounded_and_starts_no_election(
    make_cluster,
) -> None:
    cluster: Cluster = make_cluster(size=3)
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    term_before = cluster.get(follower, "/health/node").json()["term"]
    rss_before = rss_mb(follower)

    stop, sent = threading.Event(), [0]
    threads = [
        threading.Thread(target=flood, args=(follower.raft_port, stop, sent), daemon=True)
        for _ in range(CONNECTIONS)
    ]
    for thread in threads:
        thread.start()
    peak = rss_before
    deadline = time.monotonic() + FLOOD_S
    while time.monotonic() < deadline:
        peak = max(peak, rss_mb(follower))
        time.sleep(0.1)  # sampling memory while the flood runs, not waiting for a state
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    assert sent[0] > 10 * 2**20, "the flood did not get going"
    assert peak - rss_before < 40, f"RSS grew from {rss_before:.0f} MB to {peak:.0f} MB"
    views = [cluster.get(n, "/health/node").json() for n in cluster.nodes]
    assert {v["term"] for v in views} == {term_before}, views
    assert cluster.leader().name == leader.name
    # The cluster still works: a write commits through the flooded follower.
    op = {"id": "after-flood", "name": "after", "handler": {"kind": "noop"}}
    assert cluster.define(follower, op).status_code in (200, 201)
