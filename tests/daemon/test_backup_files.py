"""A corrupted or unloadable backup is refused with its reason, and nothing is changed."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from daemon import backup
from daemon.localcluster import Layout
from daemon.restore import restore
from daemon.state import ReplicatedState
from tests.cluster_harness import ROOT, daemon_free_env


def _state(records: int = 30) -> dict:
    state = ReplicatedState()
    state.operations["alpha"] = {"id": "alpha", "name": "alpha", "handler": {"kind": "noop"}}
    for i in range(records):
        state._apply_record(
            {
                "id": f"r{i}",
                "operationId": "alpha",
                "status": "success",
                "duration": 1.0,
                "finishedAtEpoch": 1_767_000_000.0 + i,
            }
        )
    return backup.copy_state(state)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    _, body = backup.encode(_state(), "unrdf-daemon-0", 40, 3, 0)
    path = tmp_path / "good.bak"
    path.write_bytes(body)
    return path


def _split(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()[len(backup.MAGIC) :]
    line, payload = raw.split(b"\n", 1)
    return json.loads(line), payload


def _write(path: Path, manifest: dict, payload: bytes) -> Path:
    path.write_bytes(backup.MAGIC + json.dumps(manifest).encode() + b"\n" + payload)
    return path


def _restore_refused(path: Path, target: Path, reason: str) -> None:
    with pytest.raises(backup.BackupError, match=reason):
        restore(path, target, nodes=3, http_port=18080)
    assert not target.exists() or not any(target.iterdir())  # nothing written


def test_a_good_backup_reads_back_to_its_state(good: Path) -> None:
    manifest, data = backup.read(good)
    assert manifest["totalExecutions"] == manifest["executionRecordsHeld"] == 30
    assert backup.summarize(data)["contentDigest"] == manifest["contentDigest"]


def test_one_flipped_byte_is_refused_by_its_hash(good: Path, tmp_path: Path) -> None:
    raw = bytearray(good.read_bytes())
    raw[-10] ^= 0x01
    bad = tmp_path / "flipped.bak"
    bad.write_bytes(bytes(raw))
    _restore_refused(bad, tmp_path / "target", r"SHA-256 .* \(the file is corrupted\)")


def test_a_truncated_file_is_refused(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "short.bak"
    bad.write_bytes(good.read_bytes()[:-100])
    _restore_refused(bad, tmp_path / "target", "truncated")
    bad.write_bytes(good.read_bytes()[:30])
    _restore_refused(bad, tmp_path / "target", "manifest line is cut off")


def test_a_manifest_that_does_not_match_its_payload_is_refused(good: Path, tmp_path: Path) -> None:
    manifest, payload = _split(good)
    _restore_refused(
        _write(tmp_path / "more.bak", {**manifest, "totalExecutions": 31}, payload),
        tmp_path / "target",
        "totalExecutions is 31 in the manifest, 30 in the payload",
    )
    # A payload swapped for another state, its hash updated to match: the counts betray it.
    other = zlib.compress(pickle.dumps(_state(5)))
    import hashlib

    forged = {
        **manifest,
        "payloadBytes": len(other),
        "payloadSha256": hashlib.sha256(other).hexdigest(),
    }
    _restore_refused(_write(tmp_path / "swap.bak", forged, other), tmp_path / "t", "does not match")


def test_a_newer_code_version_or_missing_field_is_refused(good: Path, tmp_path: Path) -> None:
    manifest, payload = _split(good)
    _restore_refused(
        _write(tmp_path / "new.bak", {**manifest, "codeVersion": 99}, payload),
        tmp_path / "target",
        "code version 99 is newer than this release",
    )
    del manifest["payloadSha256"]
    _restore_refused(_write(tmp_path / "m.bak", manifest, payload), tmp_path / "t", "lacks")


def test_a_payload_that_names_a_class_is_refused_before_it_is_loaded(
    good: Path, tmp_path: Path
) -> None:
    manifest, _ = _split(good)
    evil = zlib.compress(pickle.dumps({"operations": {}, "x": Path("/")}))
    import hashlib

    forged = {
        **manifest,
        "payloadBytes": len(evil),
        "payloadSha256": hashlib.sha256(evil).hexdigest(),
    }
    _restore_refused(_write(tmp_path / "evil.bak", forged, evil), tmp_path / "t", "pathlib")


def test_restoring_over_a_running_or_foreign_directory_changes_nothing(
    good: Path, tmp_path: Path
) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(backup.BackupError, match="not empty and holds no cluster layout"):
        restore(good, foreign)
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]


def test_the_restore_command_writes_a_layout_or_refuses_in_one_line(
    good: Path, tmp_path: Path
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daemon", "restore", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=daemon_free_env(),
            timeout=60,
        )

    bad = tmp_path / "bad.bak"
    bad.write_bytes(good.read_bytes()[:-1])
    refused = run("--backup", str(bad), "--data-dir", str(tmp_path / "x"))
    assert refused.returncode == 2
    assert (
        refused.stderr.startswith("daemon restore: refused: ") and refused.stderr.count("\n") == 1
    )
    assert not (tmp_path / "x").exists()

    done = run("--backup", str(good), "--data-dir", str(tmp_path / "c"), "--nodes", "2")
    assert done.returncode == 0, done.stderr
    assert "python -m daemon cluster --data-dir" in done.stdout
    layout = Layout.load(tmp_path / "c")
    assert [s.name for s in layout.nodes] == ["unrdf-daemon-0", "unrdf-daemon-1"]
    for spec in layout.nodes:
        assert (layout.data_dir(spec.name) / "raft.dump").stat().st_size > 0
    assert oct(layout.raft_secret_path.stat().st_mode & 0o777) == "0o600"


def test_a_stopped_clusters_data_dir_is_restored_in_place_with_a_new_secret(
    good: Path, tmp_path: Path
) -> None:
    layout = Layout.on_free_ports(tmp_path / "cluster", 3)
    layout.save()
    layout.write_secrets("old-secret", {"admin": "t" * 24})
    layout.write_configs()
    (layout.data_dir("unrdf-daemon-1")).mkdir()
    (layout.data_dir("unrdf-daemon-1") / "raft.journal").write_bytes(b"old journal")
    result = restore(good, tmp_path / "cluster")
    assert result.in_place and len(result.layout.nodes) == 3
    assert layout.raft_secret_path.read_text().strip() != "old-secret"
    assert sorted(p.name for p in layout.data_dir("unrdf-daemon-1").iterdir()) == ["raft.dump"]
    assert json.loads(layout.tokens_path.read_text()) == [{"token": "t" * 24, "role": "admin"}]
