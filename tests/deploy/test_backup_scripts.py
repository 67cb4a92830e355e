"""deploy/scripts/backup-daemon against a real local 3-node cluster: the file it keeps is
a backup the daemon's own reader accepts, with the cluster's executions in it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import backup
from tests.cluster_harness import ADMIN_TOKEN, Cluster
from tests.deploy.test_scripts import SCRIPTS, _execute
from tests.deploy.tools import tool_or_skip

pytestmark = pytest.mark.cluster


def test_backup_daemon_passes_shellcheck() -> None:
    shellcheck = tool_or_skip("shellcheck", "shellcheck")
    result = subprocess.run(
        [shellcheck, "-x", str(SCRIPTS / "backup-daemon")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for tool in ("curl", "jq"):
        tool_or_skip(tool, tool)
    cluster = Cluster(tmp_path_factory.mktemp("backup-cluster"), size=3)
    try:
        cluster.start()
        cluster.leader()
        yield cluster
    finally:
        cluster.stop_all()


def _backup(url: str, backup_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / "backup-daemon")],
        env={
            "PATH": os.environ["PATH"],
            "DAEMON_URL": url,
            "DAEMON_TOKEN": ADMIN_TOKEN,
            "BACKUP_DIR": str(backup_dir),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_backup_daemon_keeps_a_checked_backup_the_daemon_can_read(
    cluster: Cluster, tmp_path: Path
) -> None:
    _execute(cluster, "backed-up", "noop", 5)
    result = _backup(cluster.nodes[1].url, tmp_path)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path and path.name.startswith("daemon-backup-")
    manifest, _state = backup.read(path)  # read() checks sizes, digests and the pickle
    assert manifest["appliedIndex"] > 0
    assert f'"appliedIndex":{manifest["appliedIndex"]}' in result.stdout
    assert manifest["totalExecutions"] >= 5
    assert not list(tmp_path.glob(".backup-daemon.*"))  # no partial file left behind


def test_backup_daemon_keeps_only_the_newest(cluster: Cluster, tmp_path: Path) -> None:
    # Two files a day apart by name, so the order does not depend on the clock's second.
    for stamp in ("20200101T000000Z-1", "20200102T000000Z-2"):
        (tmp_path / f"daemon-backup-{stamp}.bak").write_bytes(b"old")
    result = _backup(cluster.nodes[0].url, tmp_path, KEEP="2")
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in tmp_path.glob("daemon-backup-*.bak"))
    assert len(kept) == 2 and kept[0] == "daemon-backup-20200102T000000Z-2.bak"
    assert "removed" in result.stdout


def test_backup_daemon_refuses_in_one_line_without_the_admin_token(
    cluster: Cluster, tmp_path: Path
) -> None:
    result = _backup(cluster.nodes[0].url, tmp_path, DAEMON_TOKEN="wrong")
    assert result.returncode == 1
    assert result.stderr.startswith("backup-daemon: cannot take a backup from ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_backup_daemon_says_so_when_the_cluster_is_unreachable(tmp_path: Path) -> None:
    result = _backup("http://127.0.0.1:9", tmp_path)
    assert result.returncode == 1
    assert "cannot take a backup from http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_pre_upgrade_checks_take_a_backup_and_weekly_maintenance_shows_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "DAEMON_URL": cluster.nodes[0].url,
        "DAEMON_TOKEN": ADMIN_TOKEN,
        "BACKUP_DIR": str(tmp_path),
        "MIN_SUCCESS_RATE": "0",
    }
    checks = subprocess.run(
        [str(SCRIPTS / "pre-upgrade-checks")], env=env, capture_output=True, text=True, timeout=120
    )
    assert checks.returncode == 0, checks.stdout + checks.stderr
    [kept] = tmp_path.glob("daemon-backup-*.bak")
    assert f"✓ backup: {kept}" in checks.stdout
    weekly = subprocess.run(
        [str(SCRIPTS / "weekly-maintenance")], env=env, capture_output=True, text=True, timeout=120
    )
    assert weekly.returncode == 0, weekly.stderr
    applied = backup.read_manifest_file(kept)["appliedIndex"]
    assert f"newest: {kept} (applied index {applied}, taken " in weekly.stdout
