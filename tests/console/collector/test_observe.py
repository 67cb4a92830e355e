"""The collector reads health answers through the daemon's contract: a node whose answer
breaks it counts as not answering, with the reason in one line."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator

import httpx
import pytest
from asgiref.sync import async_to_sync

from console.clusters.daemon_client import DaemonClient
from console.clusters.models import Cluster
from console.collector.observe import Observation, Target, observe
from tests.loopback import http_server

# A node that answers, but not as the daemon does: an unknown role, and a cluster view
# whose member list is not a list.
ANSWERS = {
    "/health/node": {"name": "odd", "role": "boss", "term": 1},
    "/health/cluster": {"leader": "odd", "nodes": "odd"},
    "/queue": {"active": 0, "queued": 0},
    "/metrics": {},
    "/metrics/5m": {},
}


class OffContract(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ANSWERS.get(self.path.split("?")[0], {})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def odd_node_url() -> Iterator[str]:
    with http_server(OffContract) as url:
        yield url


def observe_once(url: str) -> Observation:
    async def once() -> Observation:
        async with httpx.AsyncClient() as http:
            client = DaemonClient(Cluster(name="odd"))
            return await observe(client, http, [Target(url, None)], None, timeout_s=2.0)

    return async_to_sync(once)()


def test_an_answer_outside_the_contract_counts_as_no_answer(odd_node_url: str) -> None:
    obs = observe_once(odd_node_url)
    [poll] = obs.polls
    assert not poll.reachable and poll.queue is None
    assert obs.summary is None
    assert obs.errors == [f"{odd_node_url}: /health/node: unknown role 'boss'"]
