"""The runbook's scripts (deploy/scripts/): shellcheck-clean, and run against a real
local 3-node cluster through the daemon's HTTP API, as an operator would."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.cluster_harness import ADMIN_TOKEN, Cluster, wait_for
from tests.deploy.tools import DEPLOY, tool_or_skip

pytestmark = pytest.mark.cluster

SCRIPTS = DEPLOY / "scripts"
RUNBOOK_SCRIPTS = ["pre-upgrade-checks", "daily-standup", "weekly-maintenance"]


def test_every_script_passes_shellcheck() -> None:
    shellcheck = tool_or_skip("shellcheck", "shellcheck")
    files = [SCRIPTS / name for name in [*RUNBOOK_SCRIPTS, "lib.sh"]]
    files.append(DEPLOY / "images" / "build.sh")
    result = subprocess.run(
        [shellcheck, "-x", *map(str, files)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for tool in ("curl", "jq"):
        tool_or_skip(tool, tool)
    cluster = Cluster(tmp_path_factory.mktemp("scripts-cluster"), size=3)
    try:
        cluster.start()
        cluster.leader()
        yield cluster
    finally:
        cluster.stop_all()


def run(cluster: Cluster, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / script)],
        env={
            "PATH": os.environ["PATH"],
            "DAEMON_URL": cluster.nodes[0].url,
            "DAEMON_TOKEN": ADMIN_TOKEN,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def _execute(cluster: Cluster, op_id: str, kind: str, times: int) -> None:
    node = cluster.nodes[0]
    response = cluster.define(node, {"id": op_id, "name": op_id, "handler": {"kind": kind}})
    assert response.status_code in (200, 201), response.text
    for _ in range(times):
        assert cluster.post(node, f"/execute/{op_id}").status_code == 200


def test_daily_standup_reports_health_members_and_the_last_day(cluster: Cluster) -> None:
    result = run(cluster, "daily-standup")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("Cluster Health", "Members", "Last 24 Hours", "Queue"):
        assert f"=== {heading} ===" in out
    assert '"clusterSize": 3' in out
    assert all(node.name in out for node in cluster.nodes)


def test_weekly_maintenance_reports_each_members_data_size(cluster: Cluster) -> None:
    result = run(cluster, "weekly-maintenance")
    assert result.returncode == 0, result.stderr
    for node in cluster.nodes:
        assert f"{node.name}: " in result.stdout
        assert f"{node.name}: unreachable" not in result.stdout
    assert '"successRate"' in result.stdout


def test_pre_upgrade_checks_pass_on_a_healthy_cluster_and_snapshot(cluster: Cluster) -> None:
    result = run(cluster, "pre-upgrade-checks", SNAPSHOT="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ all 3 members reachable" in result.stdout
    assert "✓ snapshot: journal" in result.stdout
    assert "ready to upgrade" in result.stdout


def test_the_success_rate_gate_compares_decimals(cluster: Cluster) -> None:
    # 119 successes and 1 failure: 99.17 %, which the runbook's integer test could not
    # even compare; it passes the 98 % gate. Three more failures: 96.75 %, it fails.
    _execute(cluster, "gate-ok", "noop", 119)
    _execute(cluster, "gate-fail", "fail", 1)
    result = run(cluster, "pre-upgrade-checks")
    assert result.returncode == 0, result.stdout
    assert "✓ success rate 99.17% >= 98% (24 h)" in result.stdout
    _execute(cluster, "gate-fail", "fail", 3)
    result = run(cluster, "pre-upgrade-checks")
    assert result.returncode == 1, result.stdout
    assert "✗ success rate 96.75% < 98% (24 h)" in result.stdout


def test_pre_upgrade_checks_refuse_a_cluster_with_a_member_down(cluster: Cluster) -> None:
    victim = cluster.nodes[2]
    cluster.kill(victim)
    try:
        wait_for(
            lambda: (
                not next(
                    n
                    for n in cluster.cluster_view(cluster.nodes[0])["nodes"]
                    if n["name"] == victim.name
                )["reachable"]
            ),
            timeout=20,
            what="the leader to see the member down",
        )
        result = run(cluster, "pre-upgrade-checks", MIN_SUCCESS_RATE="0")
        assert result.returncode >= 1
        assert f"✗ members unreachable: {victim.name}" in result.stdout
        assert "do not upgrade" in result.stdout
    finally:
        cluster.start_node(victim)
        cluster.wait_ready([victim])


def test_the_scripts_say_so_in_one_line_when_the_cluster_is_unreachable() -> None:
    for script in RUNBOOK_SCRIPTS:
        result = subprocess.run(
            [str(SCRIPTS / script)],
            env={
                "PATH": os.environ["PATH"],
                "DAEMON_URL": "http://127.0.0.1:9",
                "CURL_TIMEOUT_S": "2",
            },
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode != 0, script
        assert "cannot get http://127.0.0.1:9/health/cluster" in result.stderr, script
        assert "Traceback" not in result.stderr
