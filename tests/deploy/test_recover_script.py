"""deploy/scripts/recover-daemon on real local clusters: a backup taken by backup-daemon,
restored into a stopped cluster's layout, started, and verified against the manifest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster_harness import ADMIN_TOKEN, Cluster
from tests.deploy.test_scripts import SCRIPTS, _execute
from tests.deploy.tools import tool_or_skip

pytestmark = pytest.mark.cluster


def _script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        env={
            "PATH": os.environ["PATH"],
            "DAEMON_TOKEN": ADMIN_TOKEN,
            "DAEMON_PYTHON": sys.executable,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_recover_daemon_passes_shellcheck() -> None:
    shellcheck = tool_or_skip("shellcheck", "shellcheck")
    result = subprocess.run(
        [shellcheck, "-x", str(SCRIPTS / "recover-daemon")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


def test_a_backup_recovers_into_a_stopped_cluster_that_then_holds_its_state(
    tmp_path: Path,
) -> None:
    for tool in ("curl", "jq"):
        tool_or_skip(tool, tool)
    source = Cluster(tmp_path / "source", size=3)
    target = Cluster(tmp_path / "target", size=3)
    try:
        source.start()
        source.leader()
        _execute(source, "kept", "noop", 7)
        taken = _script(
            "backup-daemon", DAEMON_URL=source.nodes[0].url, BACKUP_DIR=str(tmp_path / "b")
        )
        assert taken.returncode == 0, taken.stderr
        file = taken.stdout.strip().splitlines()[-1]
        source.stop_all()

        target.start()
        target.leader()
        # Refused while its nodes run, and nothing is changed.
        refused = _script("recover-daemon", file, DATA_DIR=str(target.layout.root))
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.startswith("recover-daemon: ")
        assert len(refused.stderr.strip().splitlines()) == 1
        target.stop_all()

        done = _script("recover-daemon", file, DATA_DIR=str(target.layout.root))
        assert done.returncode == 0, done.stderr
        assert "restored; start the nodes" in done.stdout
        target.start()
        target.leader()
        url = target.nodes[1].url
        checked = _script("recover-daemon", "--verify", file, DAEMON_URL=url)
        assert checked.returncode == 0, checked.stderr
        assert "✓ 1 operations and 7 executions (backup: 7)" in checked.stdout
    finally:
        source.stop_all()
        target.stop_all()


def test_verify_says_so_when_the_cluster_lacks_the_backups_executions(tmp_path: Path) -> None:
    for tool in ("curl", "jq"):
        tool_or_skip(tool, tool)
    cluster = Cluster(tmp_path / "c", size=3)
    try:
        cluster.start()
        cluster.leader()
        _execute(cluster, "some", "noop", 2)
        taken = _script(
            "backup-daemon", DAEMON_URL=cluster.nodes[0].url, BACKUP_DIR=str(tmp_path / "b")
        )
        file = taken.stdout.strip().splitlines()[-1]
        empty = Cluster(tmp_path / "empty", size=3)
        try:
            empty.start()
            empty.leader()
            result = _script("recover-daemon", "--verify", file, DAEMON_URL=empty.nodes[0].url)
            assert result.returncode == 1
            assert result.stderr.strip() == "recover-daemon: 0 operations, the backup has 1"
        finally:
            empty.stop_all()
    finally:
        cluster.stop_all()
