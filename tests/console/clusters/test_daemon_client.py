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
def client(monkeypatch: pytest.MonkeyPatch) -> DaemonClient:
    monkeypatch.setenv("TEST_DAEMON_TOKEN", ADMIN_TOKEN)
    return DaemonClient(Cluster(name="c", token_env="TEST_DAEMON_TOKEN"))


def test_a_get_returns_the_decoded_json(client: DaemonClient, node_url: str) -> None:
    assert client.get(node_url, "/health/node")["name"] == "unrdf-daemon-0"


def test_a_post_carries_the_clusters_admin_token(client: DaemonClient, node_url: str) -> None:
    op = {"id": "client-op", "name": "client", "handler": {"kind": "noop"}}
    assert client.post(node_url, "/operations", json=op)["id"] == "client-op"
    anonymous = DaemonClient(Cluster(name="c", token_env="UNSET_TOKEN_VARIABLE"))
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
