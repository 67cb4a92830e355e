"""A fake daemon cluster behind a fake `DaemonClient`, for unit tests of actions, gates,
preflight and the runner without daemon processes.

It answers the endpoints the actions use, in the daemon's wire format; the console
parses those answers with `daemon.contract` exactly as it parses a real node's, so the
fake cannot drift from the contract without these tests failing. Nothing is sent over
a network: the URLs are never connected to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from console.clusters.daemon_client import DaemonError
from console.clusters.models import Cluster
from daemon.contract import ClusterView, parse_cluster_view, quorum_size


@dataclass
class FakeNode:
    name: str
    url: str
    reachable: bool = True  # its peers see it
    answers: bool = True  # the console reaches it
    draining: bool = False
    lag_ms: float | None = 1.0
    lag_entries: int | None = 0
    active: int = 0  # executions running; each /queue poll finishes one
    queued: int = 0


@dataclass
class FakeCluster:
    size: int = 3
    leader: str | None = "unrdf-daemon-0"
    term: int = 4
    nodes: dict[str, FakeNode] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (method, node, path)
    # Called after each call as hook(method, node, path): tests change the cluster or
    # the run at a chosen moment (a gate that turns bad, a cancel, a worker that dies).
    hooks: list[Callable[[str, str, str], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i in range(self.size):
            name = f"unrdf-daemon-{i}"
            self.nodes.setdefault(name, FakeNode(name, f"http://fake-{i}.invalid"))

    def register(self, name: str = "fake") -> Cluster:
        """The Cluster row and Node rows the console would hold for this cluster."""
        cluster = Cluster.objects.create(
            name=name, seed_urls=[n.url for n in self.nodes.values()], leader_name=self.leader
        )
        for node in self.nodes.values():
            cluster.nodes.create(name=node.name, http_url=node.url, reachable=True)
        return cluster

    def view(self) -> ClusterView:
        return parse_cluster_view(self._cluster_body(self._any_answering()))

    def count(self, method: str, node: str, path: str) -> int:
        return self.calls.count((method, node, path))

    # -- the DaemonClient interface the runbooks use ------------------------------

    def get(self, url: str, path: str, params: dict | None = None) -> Any:
        return self.request("GET", url, path)

    def post(self, url: str, path: str, json: Any = None) -> Any:
        return self.request("POST", url, path, json=json)

    def request(self, method: str, url: str, path: str, **kwargs: Any) -> Any:
        node = next((n for n in self.nodes.values() if n.url == url.rstrip("/")), None)
        if node is None or not node.answers:
            raise DaemonError(f"{url}{path}: ConnectError", None, connect_failed=True)
        self.calls.append((method, node.name, path))
        try:
            return self._answer(method, node, path, kwargs.get("json"))
        finally:
            for hook in list(self.hooks):
                hook(method, node.name, path)

    # -- the daemon's behaviour ------------------------------------------------------

    def _answer(self, method: str, node: FakeNode, path: str, body: Any) -> Any:
        if (method, path) == ("GET", "/health/cluster"):
            return self._cluster_body(node)
        if (method, path) == ("GET", "/health/node"):
            return self._node_body(node)
        if (method, path) == ("GET", "/health/ready"):
            if node.draining:
                raise DaemonError(f"{node.url}/health/ready: draining", 503)
            return {"status": "ready"}
        if (method, path) == ("GET", "/queue"):
            node.active = max(0, node.active - 1)
            return {"active": node.active, "queued": node.queued}
        if (method, path) == ("POST", "/admin/drain"):
            node.draining = True
            return {"draining": True, "active": node.active, "queued": node.queued}
        if (method, path) == ("POST", "/admin/undrain"):
            node.draining = False
            return {"draining": False}
        if (method, path) == ("POST", "/admin/snapshot"):
            return {"status": "compacted", "journalBytesBefore": 900, "journalBytesAfter": 100}
        if (method, path) == ("POST", "/admin/transfer-leader"):
            previous, self.leader = self.leader, body["target"]
            self.term += 1
            return {"leader": self.leader, "previous": previous}
        raise DaemonError(f"{node.url}{path}: not found", 404)

    def _any_answering(self) -> FakeNode:
        return next(n for n in self.nodes.values() if n.answers)

    def _has_quorum(self) -> bool:
        reachable = sum(1 for n in self.nodes.values() if n.reachable)
        return self.leader is not None and reachable >= quorum_size(len(self.nodes))

    def _cluster_body(self, asked: FakeNode) -> dict[str, Any]:
        return {
            "clusterSize": len(self.nodes),
            "leader": self.leader,
            "replicated": True,
            "replicationLag": max((n.lag_ms or 0.0) for n in self.nodes.values()),
            "term": self.term,
            "commitIndex": 100,
            "hasQuorum": self._has_quorum(),
            "node": asked.name,
            "nodes": [self._member_body(n) for n in self.nodes.values()],
        }

    def _member_body(self, node: FakeNode) -> dict[str, Any]:
        leads = node.name == self.leader
        return {
            "name": node.name,
            "role": ("leader" if leads else "follower") if node.reachable else "unknown",
            "reachable": node.reachable,
            "draining": node.draining,
            "httpUrl": node.url,
            "lagMs": None if leads else node.lag_ms,
            "lagEntries": None if leads else node.lag_entries,
        }

    def _node_body(self, node: FakeNode) -> dict[str, Any]:
        return {
            "name": node.name,
            "role": "leader" if node.name == self.leader else "follower",
            "term": self.term,
            "commitIndex": 100,
            "appliedIndex": 100,
            "lastLogIndex": 100,
            "digest": "d1",
            "draining": node.draining,
            "version": "test",
            "leader": self.leader,
            "hasQuorum": self._has_quorum(),
            "ready": not node.draining,
        }
