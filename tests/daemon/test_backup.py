"""Backups taken from real nodes, restored into a new real cluster, and refused when bad."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon import backup
from daemon.restore import RESTORED_FROM_FILE, restore_layout
from tests.cluster_harness import Cluster, wait_for


def _take(cluster: Cluster, out: Path) -> dict:
    answer = cluster.post(cluster.leader(), "/admin/backup", timeout=60)
    assert answer.status_code == 200, answer.text
    out.write_bytes(answer.content)
    manifest, _ = backup.read(out)
    assert answer.headers["X-Backup-Applied-Index"] == str(manifest["appliedIndex"])
    return manifest


def test_a_restored_three_node_cluster_holds_exactly_the_backed_up_state(
    make_cluster, tmp_path: Path
) -> None:
    source: Cluster = make_cluster()
    node = source.nodes[0]
    for op in ("alpha", "beta"):
        assert source.define(node, {"id": op, "handler": {"kind": "noop"}}).status_code == 201
    for i in range(12):
        assert source.post(
            source.nodes[i % 3], f"/execute/{'alpha' if i % 2 else 'beta'}"
        ).is_success
    manifest = _take(source, tmp_path / "b.bak")
    assert manifest["operations"] == 2
    assert manifest["totalExecutions"] == manifest["executionRecordsHeld"] == 12
    assert manifest["historyRecords"] == 12
    assert manifest["build"]["maxCodeVersion"] >= manifest["codeVersion"]
    old_secret = source.layout.raft_secret_path.read_text()
    source.stop_all()

    target: Cluster = make_cluster(start=False)
    restore_layout(target.layout, *backup.read(tmp_path / "b.bak"))
    assert target.layout.raft_secret_path.read_text() != old_secret  # a new identity
    assert (target.layout.root / RESTORED_FROM_FILE).exists()
    target.start()
    target.leader()
    target.wait_converged()
    for n in target.nodes:
        summary = target.get(n, "/admin/backup/summary", headers=_admin()).json()
        for field in backup.SUMMARY_FIELDS:
            if field != "digest":  # the new cluster's own leader and uptime entries extend it
                assert summary[field] == manifest[field], field
        assert summary["appliedIndex"] > manifest["appliedIndex"]
        assert target.get(n, "/metrics").json()["totalOperations"] == 12
        assert len(target.get(n, "/operations").json()) == 2
    # The restored cluster takes new work, continuing the sequence.
    record = target.post(target.nodes[1], "/execute/alpha").json()
    assert record["seq"] == 13


def test_a_backup_under_a_steady_writer_is_the_state_at_its_applied_index(
    make_cluster, tmp_path: Path
) -> None:
    cluster: Cluster = make_cluster()
    leader = cluster.leader()
    assert cluster.define(leader, {"id": "steady", "handler": {"kind": "noop"}}).is_success
    stop = threading.Event()
    seen: dict[int, str] = {}  # applied index -> digest, as a follower reported them

    def write() -> None:
        while not stop.is_set():
            cluster.post(leader, "/execute/steady")

    follower = next(n for n in cluster.nodes if n is not leader)

    def watch() -> None:
        while not stop.is_set():
            view = cluster.get(follower, "/health/node").json()
            seen[view["appliedIndex"]] = view["digest"]

    threads = [threading.Thread(target=write), threading.Thread(target=watch)]
    for thread in threads:
        thread.start()
    manifests = []
    try:
        wait_for(lambda: len(seen) > 20, timeout=20, what="the writer moving the index")
        for i in range(4):
            manifests.append(_take(cluster, tmp_path / f"b{i}.bak"))
        wait_for(
            lambda: max(seen) > max(m["appliedIndex"] for m in manifests),
            timeout=20,
            what="the follower past the last backup",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    matched = [m for m in manifests if m["appliedIndex"] in seen]
    assert matched, "no backup's applied index was sampled on the follower"
    for m in matched:
        assert seen[m["appliedIndex"]] == m["digest"]
    assert len({m["appliedIndex"] for m in manifests}) > 1  # the writer really moved it


def _admin() -> dict[str, str]:
    from tests.cluster_harness import ADMIN_TOKEN

    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_daemonctl_backup_writes_a_checked_file_and_refuses_to_overwrite(
    cluster: Cluster, tmp_path: Path
) -> None:
    from daemon.ctl.parser import main
    from tests.cluster_harness import ADMIN_TOKEN

    cluster.define(cluster.nodes[0], {"id": "one", "handler": {"kind": "noop"}})
    urls = ",".join(n.url for n in cluster.nodes)
    out, err = io.StringIO(), io.StringIO()
    dest = tmp_path / "ctl.bak"
    args = ["--url", urls, "--token", ADMIN_TOKEN, "backup", "--out", str(dest)]
    assert main(args, stdout=out, stderr=err) == 0, err.getvalue()
    assert "1 operations" in out.getvalue()
    assert backup.read(dest)[0]["operations"] == 1
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    assert main(args, stdout=out, stderr=err) == 1
    assert "exists" in err.getvalue()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_a_full_disk_fails_the_backup_cleanly_and_leaves_the_cluster_serving(
    cluster: Cluster, tmp_path: Path
) -> None:
    from tests.cluster_harness import ADMIN_TOKEN, ROOT, daemon_free_env

    node = cluster.nodes[0]
    for i in range(40):  # ~40 KB of incompressible definitions: more than the 16 KB disk
        op = {"id": f"op{i}", "handler": {"kind": "noop"}, "description": secrets.token_hex(500)}
        assert cluster.define(node, op).is_success
    small = tmp_path / "small"
    small.mkdir()
    urls = ",".join(n.url for n in cluster.nodes)
    script = (
        f"mount -t tmpfs -o size=16k tmpfs {small} && "
        f"{sys.executable} -m daemon.ctl --url {urls} --token {ADMIN_TOKEN} "
        f"backup --out {small}/b.bak; echo exit=$?; ls -A {small}"
    )
    run = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=daemon_free_env(),
        timeout=120,
    )
    assert "exit=1" in run.stdout, run.stdout + run.stderr
    assert "No space left on device" in run.stderr
    assert run.stdout.strip().endswith("exit=1")  # `ls -A` printed nothing: no partial file
    assert list(small.iterdir()) == []  # and the mount never leaked out of the namespace
    assert cluster.post(node, "/execute/op1").is_success
    assert cluster.get(node, "/health/ready").status_code == 200
