"""Kill -9 the leader while clients keep executing: nothing acknowledged is lost."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from tests.cluster_harness import ADMIN_TOKEN, Cluster, Node, wait_for

pytestmark = pytest.mark.cluster

ELECTION_TIMEOUT_S = 1.0  # the daemon's default raft.electionTimeoutMs


class Load:
    """Client threads executing `op` on random live nodes, remembering every 200."""

    def __init__(self, cluster: Cluster, op: str, threads: int = 4) -> None:
        self.cluster, self.op = cluster, op
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(timeout=10, headers=headers) as client:
            while not self.stop.is_set():
                node = rng.choice(self.cluster.nodes)
                try:
                    response = client.post(f"{node.url}/execute/{self.op}")
                except httpx.HTTPError:
                    continue  # the killed node, or a connection cut mid-request: not acked
                with self.lock:
                    if response.status_code == 200:
                        self.acked.append(response.json()["id"])
                    elif response.status_code >= 500 and response.status_code != 503:
                        self.errors.append(f"{response.status_code} {response.text}")

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def all_execution_ids(cluster: Cluster, node: Node) -> set[str]:
    ids: set[str] = set()
    after = 0
    while True:
        page = cluster.get(node, f"/executions?after={after}&limit=1000").json()
        ids.update(r["id"] for r in page["executions"])
        if not page["executions"]:
            return ids
        after = page["nextAfter"]


def first_write_after(cluster: Cluster, survivors: list[Node], started: float) -> float:
    """Seconds from `started` until an execute succeeds on a survivor."""

    def write() -> float | None:
        for node in survivors:
            try:
                if cluster.post(node, "/execute/noop-op", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
        return None

    return wait_for(write, timeout=15, interval=0.01, what="a write after the leader died")


def test_leader_kill_under_load_loses_no_acknowledged_execution(cluster: Cluster) -> None:
    cluster.define(cluster.nodes[0], {"id": "noop-op", "name": "noop", "handler": {"kind": "noop"}})
    with Load(cluster, "noop-op") as load:
        wait_for(lambda: load.count() >= 100, what="100 acknowledged executions before the kill")
        leader = cluster.leader()
        killed_at = time.monotonic()
        cluster.kill(leader)
        survivors = [n for n in cluster.nodes if n is not leader]
        recovery_s = first_write_after(cluster, survivors, killed_at)
        acked_at_kill = load.count()
        wait_for(lambda: load.count() >= acked_at_kill + 100, what="100 more after the failover")
    assert not load.errors, load.errors[:5]
    # A new leader serves writes within about two election timeouts.
    assert recovery_s < 2 * ELECTION_TIMEOUT_S * 1.5 + 1.0, f"failover took {recovery_s:.2f}s"
    new_leader = cluster.leader()
    assert new_leader is not leader

    cluster.start_node(leader)
    cluster.wait_ready([leader])
    views = cluster.wait_converged(timeout=30)
    assert len({v["digest"] for v in views}) == 1
    for node in cluster.nodes:
        missing = set(load.acked) - all_execution_ids(cluster, node)
        assert not missing, f"{node.name} lost {len(missing)} acknowledged executions"


def test_failover_count_rises_after_a_leader_change(cluster: Cluster) -> None:
    before = cluster.get(cluster.nodes[0], "/metrics/month").json()["failoverCount"]
    leader = cluster.leader()
    cluster.kill(leader)
    survivor = next(n for n in cluster.nodes if n is not leader)

    def counted() -> bool:
        return cluster.get(survivor, "/metrics/month").json()["failoverCount"] > before

    wait_for(counted, timeout=15, what="failoverCount to rise")
