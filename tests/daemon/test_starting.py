"""A node that answers HTTP before it has caught up with the cluster log says it
is starting (with Retry-After), as its startup and readiness probes do, instead of
"no quorum"."""

from __future__ import annotations

import pytest

from tests.cluster_harness import Cluster, wait_for

pytestmark = pytest.mark.cluster

OP = {"id": "start-op", "name": "start", "handler": {"kind": "noop"}}


def test_a_node_restarted_alone_answers_writes_with_starting_until_it_hears_a_leader(
    make_cluster,
) -> None:
    cluster: Cluster = make_cluster()
    assert cluster.define(cluster.nodes[0], OP).status_code in (200, 201)
    cluster.stop_all()
    # Alone, the node replays its journal but never hears a leader's commit
    # index: it stays "starting" for as long as it is alone.
    lonely, peer = cluster.nodes[0], cluster.nodes[1]
    cluster.start_node(lonely)
    wait_for(lambda: cluster.get(lonely, "/health/live").status_code == 200, what="HTTP up")

    startup = cluster.get(lonely, "/health/startup")
    ready = cluster.get(lonely, "/health/ready")
    write = cluster.post(lonely, f"/execute/{OP['id']}")
    define = cluster.define(lonely, {**OP, "name": "renamed"})
    assert startup.status_code == 503 and startup.json()["status"] == "starting"
    assert ready.status_code == 503 and ready.json()["status"] == "starting"
    for answer in (write, define):
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"].startswith("starting"), answer.text
        assert "no quorum" not in answer.json()["error"]
        assert int(answer.headers["Retry-After"]) >= 1
    # What it has applied it serves; what it has not applied yet (entries past its last
    # snapshot wait for a leader's commit index) is "starting", never "not found".
    read = cluster.get(lonely, f"/operations/{OP['id']}")
    assert read.status_code == 200 or (
        read.status_code == 503 and read.json()["error"].startswith("starting")
    ), read.text
    unknown = cluster.post(lonely, "/execute/not-loaded-yet")
    assert unknown.status_code == 503 and unknown.json()["error"].startswith("starting")

    # Whoever waits for its "cluster started" line learns from its log why it has not come.
    line = wait_for(
        lambda: next((ln for ln in lonely.log().splitlines() if "not ready yet" in ln), None),
        timeout=30,
        what="the node saying why it is not ready",
    )
    assert "leader None" in line and "not connected" in line and "applied" in line, line

    # A second member makes a majority: a leader, and the node takes writes.
    cluster.start_node(peer)
    wait_for(
        lambda: cluster.post(lonely, f"/execute/{OP['id']}").status_code == 200,
        timeout=30,
        what="writes accepted once a majority is back",
    )
    assert cluster.get(lonely, "/health/ready").json()["status"] == "ready"
