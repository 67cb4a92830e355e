"""deploy/scripts/rollback on a real local 3-node cluster (its local path: no Kubernetes
API server runs here, so the kubectl path is only shellchecked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster_harness import ADMIN_TOKEN, Cluster
from tests.deploy.tools import tool_or_skip

pytestmark = pytest.mark.cluster

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "scripts" / "rollback"
DAEMONCTL = str(Path(sys.executable).with_name("daemonctl"))


def _rollback(cluster: Cluster, release: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), release],
        env={
            "PATH": os.environ["PATH"],
            "DAEMON_URL": cluster.nodes[0].url,
            "DAEMON_TOKEN": ADMIN_TOKEN,
            "CLUSTER_DIR": str(cluster.layout.root),
            "DAEMONCTL": DAEMONCTL,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


def _pid(cluster: Cluster, name: str) -> str:
    return cluster.layout.pid_path(name).read_text()


def test_rollback_passes_shellcheck() -> None:
    shellcheck = tool_or_skip("shellcheck", "shellcheck")
    result = subprocess.run(
        [shellcheck, "-x", str(SCRIPT)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_rollback_moves_every_node_one_at_a_time_with_the_leader_last(tmp_path: Path) -> None:
    for tool in ("curl", "jq"):
        tool_or_skip(tool, tool)
    cluster = Cluster(tmp_path / "c", size=3)
    try:
        cluster.start()
        leader = cluster.leader().name
        # A release that is not installed: refused at the first node, which keeps running.
        refused = _rollback(cluster, "r-not-installed")
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.startswith("rollback: stopped at ")
        assert len(refused.stderr.strip().splitlines()) == 1

        pids = {n.name: _pid(cluster, n.name) for n in cluster.nodes}
        result = _rollback(cluster, "checkout")
        assert result.returncode == 0, result.stdout + result.stderr
        moved = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("✓ ")]
        assert moved[:3][-1] == leader and sorted(moved[:3]) == sorted(
            n.name for n in cluster.nodes
        )
        assert "✓ rolled back to checkout: all 3 members reachable" in result.stdout
        # Each node really was restarted (a new process), not just asked.
        assert all(_pid(cluster, name) != pid for name, pid in pids.items())
    finally:
        cluster.stop_all()
