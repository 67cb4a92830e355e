"""GET /watch: a blocking watch that answers when the node's view changes (issue 16)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.cluster_harness import Cluster

pytestmark = pytest.mark.cluster


def test_a_watch_without_a_token_answers_at_once_with_the_node_view(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    body = cluster.get(node, "/watch").json()
    assert body["changed"] is True
    assert body["node"]["name"] == node.name
    assert body["token"]


def test_a_watch_with_the_current_token_waits_out_its_timeout_when_nothing_changes(
    cluster: Cluster,
) -> None:
    node = cluster.nodes[0]
    cluster.leader()
    cluster.wait_converged()
    # Reachability and roles settle a moment after the leader is agreed: the first
    # watch that outlasts its timeout shows the quiet state.
    for _ in range(20):
        token = cluster.get(node, "/watch").json()["token"]
        started = time.monotonic()
        body = cluster.get(node, "/watch", params={"since": token, "timeout": 1}).json()
        if not body["changed"]:
            break
    assert body["changed"] is False and body["token"] == token
    assert time.monotonic() - started >= 0.9


def test_a_watch_on_a_survivor_answers_when_the_leader_is_killed(cluster: Cluster) -> None:
    leader = cluster.leader()
    survivor = next(n for n in cluster.nodes if n is not leader)
    token = cluster.get(survivor, "/watch").json()["token"]
    answers: list[dict] = []

    def hold() -> None:
        # A change that lands before the kill would answer early: keep watching.
        since = token
        for _ in range(50):
            if answers and answers[-1]["node"]["leader"] not in (leader.name, None):
                return
            params = {"since": since, "timeout": 8}
            body = cluster.get(survivor, "/watch", params=params, timeout=15).json()
            answers.append(body)
            since = body["token"]

    watcher = threading.Thread(target=hold)
    watcher.start()
    killed_at = time.monotonic()
    cluster.kill(leader)
    watcher.join(timeout=30)
    assert not watcher.is_alive()
    last = answers[-1]
    assert last["changed"] is True
    assert last["node"]["leader"] not in (leader.name, None)
    # Well before the 8 s timeout: the change itself answered the watch.
    assert time.monotonic() - killed_at < 6


@pytest.mark.parametrize("query", ["timeout=x", "timeout=61", "timeout=-1", "since=" + "a" * 65])
def test_a_watch_with_bad_parameters_is_refused_with_a_400(cluster: Cluster, query: str) -> None:
    response = cluster.get(cluster.nodes[0], f"/watch?{query}")
    assert response.status_code == 400
    assert "error" in response.json()
