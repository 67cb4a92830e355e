"""Issue 14's daemon findings replayed against real nodes: each attack is now refused
or bounded (limits, paging, JSON-only writes, Host names, slow clients)."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.cluster_harness import OPERATE_TOKEN, Cluster

pytestmark = pytest.mark.cluster

LIMITS = {"limits": {"maxOperations": 5, "maxDefinitionBytes": 2048, "maxParamsBytes": 100}}


def op(i: int | str, **extra: object) -> dict:
    return {"id": f"op-{i}", "name": f"op {i}", "handler": {"kind": "noop"}, **extra}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    cluster = Cluster(tmp_path_factory.mktemp("limits"), size=1, overrides=LIMITS)
    try:
        yield cluster.start()
    finally:
        cluster.stop_all()


def test_defining_past_max_operations_is_refused_with_a_409_naming_the_limit(small) -> None:
    node = small.nodes[0]
    for i in range(5):
        assert small.define(node, op(i)).status_code in (200, 201)
    refused = small.define(node, op(99))
    assert refused.status_code == 409
    assert "limits.maxOperations" in refused.json()["error"]
    # Redefining an existing operation is not growth, and deleting makes room again.
    assert small.define(node, op(0, description="again")).status_code == 200
    assert small.delete(node, "/operations/op-4").status_code == 200
    assert small.define(node, op(99)).status_code == 201
    assert small.delete(node, "/operations/op-99").status_code == 200


def test_an_oversized_definition_or_params_is_refused_with_a_413_naming_the_limit(small) -> None:
    node = small.nodes[0]
    big = op("big", handler={"kind": "log", "message": "x" * 3000})
    refused = small.define(node, big)
    assert refused.status_code == 413
    assert "limits.maxDefinitionBytes" in refused.json()["error"]
    params = small.post(node, "/execute/op-0", json={"params": {"k": "v" * 200}})
    assert params.status_code == 413
    assert "limits.maxParamsBytes" in params.json()["error"]


def test_operations_are_listed_in_pages(small) -> None:
    node = small.nodes[0]
    first = small.get(node, "/operations?limit=2")
    assert first.status_code == 200
    ids = [o["id"] for o in first.json()]
    assert len(ids) == 2
    seen = list(ids)
    after = first.headers["x-next-after"]
    while after:
        page = small.get(node, f"/operations?limit=2&after={after}")
        seen += [o["id"] for o in page.json()]
        after = page.headers.get("x-next-after")
    assert seen == sorted({o["id"] for o in small.get(node, "/operations").json()})
    assert small.get(node, "/operations?after=..").status_code == 400


def test_a_text_plain_write_is_refused_with_415(small) -> None:
    node = small.nodes[0]
    response = httpx.post(
        node.url + "/operations",
        content=b'{"id":"csrf","name":"csrf","handler":{"kind":"noop"}}',
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {OPERATE_TOKEN}"},
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    # The runbook's bodiless `curl -X POST .../execute/op` still works.
    bare = httpx.post(
        node.url + "/execute/op-0", headers={"Authorization": f"Bearer {OPERATE_TOKEN}"}
    )
    assert bare.status_code == 200, bare.text


def test_a_foreign_host_header_is_refused_so_dns_rebinding_reads_nothing(small) -> None:
    node = small.nodes[0]
    rebound = small.get(node, "/health/cluster", token=None, headers={"Host": "evil.example.com"})
    assert rebound.status_code == 421
    for host in ("localhost", "127.0.0.1", "unrdf-daemon-0", "unrdf-daemon.ns.svc.cluster.local"):
        answer = small.get(node, "/health/node", token=None, headers={"Host": f"{host}:8080"})
        assert answer.status_code == 200, (host, answer.text)


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(make_cluster) -> None:
    cluster = make_cluster(size=1, overrides={"limits": {"headerTimeoutSeconds": 1}})
    node = cluster.nodes[0]
    silent = socket.create_connection(("127.0.0.1", node.http_port), timeout=10)
    dribbling = socket.create_connection(("127.0.0.1", node.http_port), timeout=10)
    dribbling.sendall(b"GET /health/live HTTP/1.1\r\n")
    started = time.monotonic()
    for sock in (silent, dribbling):
        # b"" means the node closed it; before the fix recv timed out (socket.timeout).
        assert sock.recv(1024) == b""
        sock.close()
    assert time.monotonic() - started < 8
    assert cluster.get(node, "/health/live").status_code == 200


def test_a_nodes_data_directory_and_journal_are_owner_only(small) -> None:
    node = small.nodes[0]
    assert small.define(node, op("modes")).status_code in (200, 201)
    assert node.data_dir.stat().st_mode & 0o777 == 0o700
    journal = node.data_dir / "raft.journal"
    assert journal.exists()
    assert journal.stat().st_mode & 0o777 == 0o600
