"""daemonctl node/scale/code-version against a real local cluster, as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cluster_harness import ADMIN_TOKEN, ROOT, Cluster

pytestmark = pytest.mark.cluster


def ctl(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "daemon.ctl", *args, "--token", ADMIN_TOKEN,
         "--url", cluster.nodes[0].url, *(
             ["--cluster-dir", str(cluster.layout.root)] if args[0] in ("node", "scale") else []
         )],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip


def test_node_restart_prints_each_step_and_moves_leadership_first(cluster: Cluster) -> None:
    leader = cluster.leader()
    done = ctl(cluster, "node", "restart", leader.name, "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    finished = [e["step"] for e in events[:-1] if e["status"] == "done"]
    assert finished == ["preflight", "drain", "hand leadership away", "stop", "start",
                        "catch up", "undrain"]  # fmt: skip
    outcome = events[-1]["outcome"]
    assert outcome["ok"] and outcome["detail"]["leadershipMovedTo"] != leader.name

    table = ctl(cluster, "node", "status")
    assert table.returncode == 0, table.stderr
    assert all(n.name in table.stdout for n in cluster.nodes)
    assert table.stdout.count("running") == 3 and table.stdout.count("leader") == 1


def test_stop_that_would_lose_quorum_and_scale_below_three_are_one_line_refusals(
    cluster: Cluster,
) -> None:
    first, second = cluster.nodes[0].name, cluster.nodes[1].name
    stopped = ctl(cluster, "node", "stop", first)
    assert stopped.returncode == 0, stopped.stderr
    assert "ok   stop" in stopped.stdout
    refused = ctl(cluster, "node", "stop", second)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "quorum needs 2" in refused.stderr
    small = ctl(cluster, "scale", "2")
    assert small.returncode == 1 and "at least 3 members" in small.stderr
    started = ctl(cluster, "node", "start", first)
    assert started.returncode == 0, started.stderr
    assert cluster.cluster_view(cluster.nodes[2])["reachableNodes"] == 3


def test_code_version_shows_and_refuses_a_version_no_member_supports(cluster: Cluster) -> None:
    shown = ctl(cluster, "code-version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("code version 0;")
    refused = ctl(cluster, "code-version", "1")
    assert refused.returncode == 1
    assert "maxCodeVersion >= 1" in refused.stderr and refused.stderr[-1] == "\n"


def test_an_unknown_node_or_cluster_dir_is_a_one_line_error(cluster: Cluster) -> None:
    unknown = ctl(cluster, "node", "restart", "unrdf-daemon-9")
    assert unknown.returncode == 1 and "no node named 'unrdf-daemon-9'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
