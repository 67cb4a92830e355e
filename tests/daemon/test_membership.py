"""Scale from 3 to 5 nodes and back, as the runbook's `kubectl scale` does."""

from __future__ import annotations

import pytest

from tests.cluster_harness import Cluster, Node, wait_for

pytestmark = pytest.mark.cluster


def join(cluster: Cluster) -> Node:
    node = cluster.add_node()
    response = cluster.post(
        cluster.nodes[0],
        "/admin/members",
        json={"name": node.name, "raftAddress": node.raft_address, "httpUrl": node.url},
    )
    assert response.status_code == 200, response.text
    cluster.wait_ready([node])
    return node


def member_names(cluster: Cluster, via: Node) -> set[str]:
    return {n["name"] for n in cluster.cluster_view(via)["nodes"]}


def test_scale_from_three_to_five_and_back(cluster: Cluster) -> None:
    first_node = cluster.nodes[0]
    cluster.define(first_node, {"id": "op", "name": "op", "handler": {"kind": "noop"}})
    first = cluster.post(first_node, "/execute/op").json()["id"]
    added = [join(cluster), join(cluster)]

    def five_reachable() -> bool:
        view = cluster.cluster_view(first_node)
        return view["clusterSize"] == 5 and all(n["reachable"] for n in view["nodes"])

    wait_for(five_reachable, what="5 reachable members")
    assert cluster.cluster_view(added[1])["faultTolerance"] == 2
    cluster.wait_converged()
    # A node that joined later received the history written before it existed.
    history = cluster.get(added[1], "/operations/op/history").json()
    assert [r["id"] for r in history] == [first]
    assert cluster.post(added[0], "/execute/op").status_code == 200

    for node in added:
        if cluster.leader() is node:
            moved = cluster.post(node, "/admin/transfer-leader", json={"target": first_node.name})
            assert moved.status_code == 200, moved.text
        response = cluster.delete(first_node, f"/admin/members/{node.name}")
        assert response.status_code == 200, response.text
        wait_for(
            lambda n=node: n.name not in member_names(cluster, first_node),
            what=f"{node.name} gone from the member list",
        )
        cluster.kill(node)

    view = cluster.cluster_view(first_node)
    assert view["clusterSize"] == 3
    assert view["hasQuorum"] is True
    assert cluster.post(cluster.nodes[1], "/execute/op").status_code == 200


def test_removal_that_would_lose_quorum_is_refused_with_the_reason(cluster: Cluster) -> None:
    leader = cluster.leader()
    followers = [n for n in cluster.nodes if n is not leader]
    cluster.kill(followers[0])
    wait_for(
        lambda: (
            not next(
                n for n in cluster.cluster_view(leader)["nodes"] if n["name"] == followers[0].name
            )["reachable"]
        ),
        what="the killed follower shown unreachable",
    )
    response = cluster.delete(leader, f"/admin/members/{followers[1].name}")
    assert response.status_code == 409
    assert "quorum" in response.json()["error"]
    assert cluster.cluster_view(leader)["clusterSize"] == 3


def test_removing_the_leader_is_refused_until_leadership_moves(cluster: Cluster) -> None:
    leader = cluster.leader()
    response = cluster.delete(leader, f"/admin/members/{leader.name}")
    assert response.status_code == 409
    assert "transfer leadership" in response.json()["error"]
