"""DaemonClient against a real daemon node: JSON back, one-line DaemonErrors otherwise."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgiref.sync import async_to_sync

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.clusters.models import Cluster
from tests.cluster_harness import ADMIN_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster
from tests.conftest import free_port

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    daemons = DaemonCluster(tmp_path_factory.mktemp("daemon"), size=1).start()
    try:
        yield daemons.nodes[0].url
    finally:
        daemons.stop_all()


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, node_url: str) -> DaemonClient:
    monkeypatch.setenv("DAEMON_TOKEN_CLIENT_TEST", ADMIN_TOKEN)
    return DaemonClient(
        Cluster(name="c", token_env="DAEMON_TOKEN_CLIENT_TEST", seed_urls=[node_url])
    )


def test_a_get_returns_the_decoded_json(client: DaemonClient, node_url: str) -> None:
    assert client.get(node_url, "/health/node")["name"] == "unrdf-daemon-0"


def test_a_post_carries_the_clusters_admin_token(client: DaemonClient, node_url: str) -> None:
    op = {"id": "client-op", "name": "client", "handler": {"kind": "noop"}}
    assert client.post(node_url, "/operations", json=op)["id"] == "client-op"
    anonymous = DaemonClient(
        Cluster(
            name="c",
            token_env="DAEMON_TOKEN_UNSET",
            operate_token_env="DAEMON_TOKEN_UNSET",
            seed_urls=[node_url],
        )
    )
    with pytest.raises(DaemonError) as caught:
        anonymous.post(node_url, "/operations", json=op)
    assert caught.value.status == 401


def test_a_daemon_error_keeps_its_status_and_reason_on_one_line(
    client: DaemonClient, node_url: str
) -> None:
    with pytest.raises(DaemonError) as caught:
        client.get(node_url, "/operations/no-such-op")
    assert caught.value.status == 404
    assert "not found" in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{node_url}/operations/no-such-op")


def test_a_node_that_is_not_there_is_an_unreachable_error(client: DaemonClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DaemonError) as caught:
        client.get(url, "/health/node")
    assert caught.value.unreachable and caught.value.connect_failed
    with pytest.raises(DaemonError):
        async_to_sync(client.aget)(url, "/health/node")


def test_a_node_that_never_answers_costs_the_timeout_and_no_more(client: DaemonClient) -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"

        async def call() -> None:
            async with httpx.AsyncClient() as http:
                await client.aget(url, "/health/node", client=http, timeout_s=0.3)

        started = time.monotonic()
        with pytest.raises(DaemonError) as caught:
            async_to_sync(call)()
        assert time.monotonic() - started < 1.5
        assert caught.value.status is None and not caught.value.connect_failed


def test_the_async_client_reads_the_same_answers(client: DaemonClient, node_url: str) -> None:
    view = async_to_sync(client.aget)(node_url, "/health/node")
    assert view["role"] == "leader"


def test_an_answer_that_is_not_json_is_an_error(client: DaemonClient, tmp_path: Path) -> None:
    import http.server
    import threading

    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>proxy page</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DaemonError, match="not JSON"):
            client.get(f"http://127.0.0.1:{server.server_port}", "/health/node")
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_goes_only_to_hosts_configured_for_the_cluster(
    monkeypatch: pytest.MonkeyPatch, node_url: str
) -> None:
    # A poisoned member reported by a daemon, on a host the cluster never named.
    monkeypatch.setenv("DAEMON_TOKEN_CLIENT_TEST", ADMIN_TOKEN)
    cluster = Cluster(name="c", token_env="DAEMON_TOKEN_CLIENT_TEST", seed_urls=[node_url])
    client = DaemonClient(cluster)
    assert client.headers_for(node_url + "/operations")
    for url in ("http://evil.example:9999/health/node", "http://localhost.evil:80/"):
        assert client.headers_for(url) == {}
    # Pods under a service name are the service's: trusted.
    k8s = Cluster(name="k", seed_urls=["http://unrdf-daemon.prod.svc.cluster.local:8080"])
    assert k8s.trusts_url("http://unrdf-daemon-0.unrdf-daemon.prod.svc.cluster.local:8080")
    assert not k8s.trusts_url("http://unrdf-daemon.evil.example:8080")
    assert Cluster(name="t", trusted_hosts=[".corp.example"]).trusts_url("http://n1.corp.example")


def test_a_cluster_row_can_never_name_a_non_daemon_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.exceptions import ValidationError

    monkeypatch.setenv("SECRET_KEY", "the-console-secret")
    row = Cluster(name="c", token_env="SECRET_KEY", seed_urls=["http://127.0.0.1:1"])
    with pytest.raises(ValidationError):
        row.clean_fields()
    assert row.api_token == ""  # and a row saved around validation still sends nothing


def test_operate_and_read_tokens_are_used_where_they_suffice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAEMON_TOKEN_A", "admin-token-0123456789")
    monkeypatch.setenv("DAEMON_TOKEN_O", "operate-token-0123456789")
    row = Cluster(
        name="c",
        token_env="DAEMON_TOKEN_A",
        operate_token_env="DAEMON_TOKEN_O",
        read_token_env="DAEMON_TOKEN_R_UNSET",
    )
    assert row.token_for("admin") == "admin-token-0123456789"
    assert row.token_for("operate") == "operate-token-0123456789"
    assert row.token_for("read") == "operate-token-0123456789"  # falls back upward only
