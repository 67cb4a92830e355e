"""Member poisoning (issue 14, point 2): `POST /admin/members` for a node that is not
there used to be recorded at once, and peers and the console then sent their tokens to
its URL. Now nothing is recorded unless the node answers on its Raft port and as
itself on its HTTP URL, and names, addresses and URLs cannot be reused."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from tests.cluster_harness import Cluster, free_port
from tests.loopback import http_server

pytestmark = pytest.mark.cluster


class _TokenTrap(BaseHTTPRequestHandler):
    """An attacker's HTTP server: answers anything, records Authorization headers."""

    seen: list[str] = []

    def do_GET(self) -> None:
        if self.headers.get("Authorization"):
            self.seen.append(self.headers["Authorization"])
        body = b'{"node": "evil-0", "status": "alive"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def trap() -> Iterator[str]:
    _TokenTrap.seen = []
    with http_server(_TokenTrap) as url:
        yield url


def test_a_member_with_no_raft_listener_is_refused_and_never_sent_a_token(
    make_cluster, trap: str
) -> None:
    cluster: Cluster = make_cluster(size=3)
    node = cluster.nodes[0]
    evil = {"name": "evil-0", "raftAddress": f"127.0.0.1:{free_port()}", "httpUrl": trap}
    response = cluster.post(node, "/admin/members", json=evil, timeout=30)
    assert response.status_code == 409, response.text
    assert "raftAddress" in response.json()["error"]
    names = {m["name"] for m in cluster.get(node, "/admin/members").json()}
    assert "evil-0" not in names
    view = cluster.cluster_view(node)
    assert view["clusterSize"] == 3
    assert _TokenTrap.seen == []


def test_a_member_reusing_a_name_address_or_url_is_refused(make_cluster) -> None:
    cluster: Cluster = make_cluster(size=3)
    node, other = cluster.nodes[0], cluster.nodes[1]
    for body in (
        {"name": other.name, "raftAddress": f"127.0.0.1:{free_port()}", "httpUrl": "http://x:1"},
        {"name": "fresh-9", "raftAddress": f"127.0.0.1:{free_port()}", "httpUrl": other.url},
    ):
        response = cluster.post(node, "/admin/members", json=body)
        assert response.status_code == 409, response.text
        assert "already" in response.json()["error"]


def test_a_member_that_never_speaks_raft_does_not_count_toward_fault_tolerance(
    make_cluster,
) -> None:
    from tests.cluster_harness import Node, wait_for

    cluster: Cluster = make_cluster(size=3)
    # A node that answers HTTP as itself but holds another Raft secret: the leader
    # never hears from it over Raft, while its anonymous /health/node looks healthy.
    impostor = Node(cluster.layout.add_node(free_port(), free_port()), cluster.layout)
    cluster.nodes.append(impostor)
    cluster.start_node(impostor, extra_env={"RAFT_PASSWORD": "not-the-cluster-secret-0123"})
    body = {"name": impostor.name, "raftAddress": impostor.raft_address, "httpUrl": impostor.url}
    added = cluster.post(cluster.nodes[0], "/admin/members", json=body, timeout=30)
    assert added.status_code == 200, added.text

    def settled() -> dict | None:
        view = cluster.cluster_view(cluster.nodes[0])
        return view if view["clusterSize"] == 4 and view["leader"] else None

    view = wait_for(settled, what="a leader with four members")
    member = next(n for n in view["nodes"] if n["name"] == impostor.name)
    assert member["reachable"] is False
    assert view["faultTolerance"] == 0  # 3 of 4 reachable, quorum 3
