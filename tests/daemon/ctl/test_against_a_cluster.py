"""daemonctl against a real cluster: the operator's CLI, end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cluster_harness import ADMIN_TOKEN, ROOT, Cluster, free_port

pytestmark = pytest.mark.cluster


def ctl(cluster: Cluster, *args: str, url: str | None = None) -> subprocess.CompletedProcess:
    urls = url or ",".join(n.url for n in cluster.nodes)
    return subprocess.run(
        [sys.executable, "-m", "daemon.ctl", "--url", urls, "--token", ADMIN_TOKEN, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_status_lists_every_node_and_marks_the_leader(cluster: Cluster) -> None:
    leader = cluster.leader()
    table = ctl(cluster, "status")
    assert table.returncode == 0, table.stderr
    for node in cluster.nodes:
        assert node.name in table.stdout
    marked = [line for line in table.stdout.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and leader.name in marked[0]
    as_json = json.loads(ctl(cluster, "--json", "status").stdout)
    assert as_json["leader"] == leader.name and as_json["clusterSize"] == 3


def test_define_exec_and_history_round_trip(cluster: Cluster) -> None:
    defined = ctl(
        cluster, "ops", "define", "cli-op", "--name", "CLI", "--handler", '{"kind": "noop"}'
    )
    assert defined.returncode == 0, defined.stderr
    executed = ctl(cluster, "--json", "ops", "exec", "cli-op")
    assert executed.returncode == 0, executed.stderr
    record = json.loads(executed.stdout)
    history = json.loads(ctl(cluster, "--json", "ops", "history", "cli-op").stdout)
    assert history[-1]["id"] == record["id"]
    assert "cli-op" in ctl(cluster, "ops", "list").stdout


def test_snapshot_drain_and_transfer_leader_work_through_the_cli(cluster: Cluster) -> None:
    assert ctl(cluster, "snapshot").returncode == 0
    node = cluster.nodes[2]
    assert ctl(cluster, "drain", "--node", node.name).returncode == 0
    assert cluster.get(node, "/health/ready").status_code == 503
    assert ctl(cluster, "undrain", "--node", node.name).returncode == 0
    assert cluster.get(node, "/health/ready").status_code == 200
    leader = cluster.leader()
    target = next(n for n in cluster.nodes if n is not leader)
    moved = ctl(cluster, "transfer-leader", "--to", target.name)
    assert moved.returncode == 0, moved.stderr
    assert cluster.leader() is target


def test_no_reachable_node_is_one_line_and_exit_1(cluster: Cluster) -> None:
    result = ctl(cluster, "status", url=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
