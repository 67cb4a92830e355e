"""The collector's keep-alive GET client (keepalive.py, on aiohttp) answers as httpx
does: the same status and body from a real node, the same DaemonError for a refused token, a closed
port or a node that never answers, within the same deadlines; it reuses one connection,
survives the node closing it, and never reuses a connection left half read."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest

from console.clusters.daemon_client import DaemonClient, DaemonError
from daemon.keepalive import NodeClient
from tests.cluster_harness import READ_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster
from tests.loopback import http_server, silent_server

T = TypeVar("T")
TIMEOUT_S = 0.8


class Row:
    """What DaemonClient needs of a Cluster row: the read token, trusted everywhere."""

    def token_for(self, role: str) -> str:
        return READ_TOKEN

    def trusts_url(self, url: str) -> bool:
        return True


class Connections:
    """Counts the connections the client's aiohttp session opens and reuses (aiohttp's
    public tracing hooks)."""

    def __init__(self) -> None:
        self.opened = 0
        self.reused = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_connection_create_end.append(self._opened)
        self.trace.on_connection_reuseconn.append(self._reused)

    async def _opened(self, *args: object) -> None:
        self.opened += 1

    async def _reused(self, *args: object) -> None:
        self.reused += 1


def run(
    make: Callable[[NodeClient], Awaitable[T]],
    timeout_s: float = TIMEOUT_S,
    connections: Connections | None = None,
) -> T:
    async def main() -> T:
        fallback = httpx.AsyncClient(timeout=timeout_s)
        traces = [connections.trace] if connections else []
        client = NodeClient(fallback, timeout_s, trace_configs=traces)
        try:
            return await make(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = DaemonCluster(Path(tmp_path_factory.mktemp("daemons")), size=1).start()
    try:
        yield cluster.nodes[0].url
    finally:
        cluster.stop_all()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung node)."""
    with silent_server() as port:
        yield port


def errors_both_ways(
    daemon: DaemonClient, url: str, path: str, timeout_s: float = TIMEOUT_S
) -> Callable[[NodeClient], Awaitable[list[DaemonError]]]:
    """For run(): the DaemonError a GET of `path` raises through this client, then
    through its httpx fallback."""

    async def both(client: NodeClient) -> list[DaemonError]:
        errors = []
        for http in (client, client.fallback):
            with pytest.raises(DaemonError) as caught:
                await daemon.aget(url, path, client=http, timeout_s=timeout_s)
            errors.append(caught.value)
        return errors

    return both


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_node_s_answers_are_the_ones_httpx_gets(node: str) -> None:
    daemon = DaemonClient(Row(), role="read")
    paths = ["/health/node", "/health/cluster", "/metrics/5m", "/queue"]

    async def both(client: NodeClient) -> list[tuple[Any, Any]]:
        pairs = []
        for path in paths:
            light = await daemon.aget(node, path, client=client, timeout_s=TIMEOUT_S)
            heavy = await daemon.aget(node, path, client=client.fallback, timeout_s=TIMEOUT_S)
            pairs.append((light, heavy))
        params = {"after": 0, "limit": 5}
        light = await daemon.aget(node, "/executions", params=params, client=client)
        heavy = await daemon.aget(node, "/executions", params=params, client=client.fallback)
        pairs.append((light, heavy))
        return pairs

    for light, heavy in run(both):
        assert type(light) is type(heavy)
        assert set(light) == set(heavy)
    # Fields that do not move between two calls are equal.
    node_light, node_heavy = run(both)[0]
    assert node_light["name"] == node_heavy["name"]
    assert node_light["role"] == node_heavy["role"]


def test_many_gets_reuse_one_connection(node: str) -> None:
    daemon = DaemonClient(Row(), role="read")

    connections = Connections()

    async def many(client: NodeClient) -> None:
        for _ in range(20):
            await daemon.aget(node, "/health/node", client=client, timeout_s=TIMEOUT_S)

    run(many, connections=connections)
    assert connections.opened == 1
    assert connections.reused == 19


def test_a_refused_token_is_the_same_daemon_error_as_through_httpx(node: str) -> None:
    class NoToken(Row):
        def token_for(self, role: str) -> str:
            return "not-a-token"

    daemon = DaemonClient(NoToken(), role="read")

    light, heavy = run(errors_both_ways(daemon, node, "/executions"))
    assert (light.status, light.message) == (heavy.status, heavy.message)
    assert light.status == 401


def test_a_closed_port_fails_to_connect_as_through_httpx() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    daemon = DaemonClient(Row(), role="read")

    light, heavy = run(errors_both_ways(daemon, url, "/health/node"))
    assert light.connect_failed and heavy.connect_failed
    assert light.status is None and heavy.status is None


def test_a_node_that_never_answers_times_out_on_the_read_deadline(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    daemon = DaemonClient(Row(), role="read")

    async def timed(client: NodeClient) -> tuple[str, float]:
        started = time.monotonic()
        with pytest.raises(DaemonError) as caught:
            await daemon.aget(url, "/health/node", client=client, timeout_s=0.3)
        return caught.value.message, time.monotonic() - started

    message, took = run(timed)
    assert "ReadTimeout" in message
    assert 0.3 <= took < 1.0


class AnswersThenCloses(BaseHTTPRequestHandler):
    """Answers one GET as if keeping the connection (HTTP/1.1, no `Connection: close`),
    then closes it, as uvicorn does with a connection idle past its keep-alive time."""

    protocol_version = "HTTP/1.1"
    closed: threading.Semaphore

    def do_GET(self) -> None:
        body = b'{"name": "n"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def finish(self) -> None:
        super().finish()
        self.closed.release()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def closing_server() -> Iterator[tuple[str, threading.Semaphore]]:
    closed = threading.Semaphore(0)
    handler = type("Handler", (AnswersThenCloses,), {"closed": closed})
    with http_server(handler) as url:
        yield url, closed


def test_a_kept_connection_the_node_closed_is_replaced(
    closing_server: tuple[str, threading.Semaphore],
) -> None:
    url, closed = closing_server
    daemon = DaemonClient(Row(), role="read")
    connections = Connections()

    async def after_close(client: NodeClient) -> list[dict]:
        answers = [await daemon.aget(url, "/x", client=client, timeout_s=TIMEOUT_S)]
        # The node has dropped the connection it kept: the next GET must neither fail
        # nor reuse it.
        assert await asyncio.to_thread(closed.acquire, timeout=5.0)
        answers.append(await daemon.aget(url, "/x", client=client, timeout_s=TIMEOUT_S))
        # And at once, while the node may still be closing the last one.
        answers.append(await daemon.aget(url, "/x", client=client, timeout_s=TIMEOUT_S))
        return answers

    assert run(after_close, connections=connections) == [{"name": "n"}] * 3
    assert connections.opened >= 3  # one per answer (a GET sent on a closing one is retried)


def test_a_get_cancelled_midway_leaves_no_connection_to_reuse(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    daemon = DaemonClient(Row(), role="read")

    connections = Connections()

    async def cancelled(client: NodeClient) -> None:
        call = daemon.aget(url, "/health/node", client=client, timeout_s=5.0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call, 0.2)
        # The next GET gets a new connection, not the one left waiting for an answer.
        with pytest.raises(DaemonError):
            await daemon.aget(url, "/health/node", client=client, timeout_s=0.2)

    run(cancelled, connections=connections)
    assert (connections.opened, connections.reused) == (2, 0)


def test_https_and_writes_go_through_httpx(node: str) -> None:
    tls_url = node.replace("http://", "https://")

    async def both(client: NodeClient) -> tuple[BaseException, int]:
        # httpx's TLS handshake against the node's plain HTTP port fails; a plain GET
        # (what the keep-alive path would send) would have been answered.
        with pytest.raises(httpx.ConnectError) as caught:
            await client.request("GET", f"{tls_url}/health/node")
        answer = await client.request("POST", f"{node}/admin/snapshot")
        return caught.value, answer.status_code

    connections = Connections()
    error, status = run(both, connections=connections)
    assert "SSL" in str(error) or "ssl" in str(error)
    assert isinstance(status, int) and status >= 400  # no token: refused, by httpx's call
    assert connections.opened == 0  # neither opened a keep-alive connection


def test_with_a_proxy_in_the_environment_gets_go_through_httpx(
    node: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that is not there: httpx, which honours the variable, cannot connect; the
    # keep-alive path would have reached the node directly.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    async def through_proxy(client: NodeClient) -> None:
        with pytest.raises(httpx.ConnectError):
            await client.request("GET", f"{node}/health/node")

    connections = Connections()
    run(through_proxy, connections=connections)
    assert connections.opened == 0


class NoContent(BaseHTTPRequestHandler):
    """Answers 204 on a kept-alive connection, with no Content-Length (none is needed)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def no_content_url() -> Iterator[str]:
    with http_server(NoContent) as url:
        yield url


def test_an_answer_without_a_body_by_definition_is_not_waited_for(no_content_url: str) -> None:
    daemon = DaemonClient(Row(), role="read")

    get_both = errors_both_ways(daemon, no_content_url, "/x", timeout_s=2.0)

    async def both(client: NodeClient) -> tuple[list[DaemonError], float]:
        started = time.monotonic()
        errors = await get_both(client)
        return errors, time.monotonic() - started

    (light, heavy), took = run(both, timeout_s=2.0)
    assert (light.status, light.message) == (heavy.status, heavy.message)
    assert took < 1.0  # no read timeout waited out
