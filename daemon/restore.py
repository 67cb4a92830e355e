"""`python -m daemon restore`: data directories from which a new cluster starts with exactly
a backup's state.

Every check runs before anything is written, so a refused backup changes nothing: the
file's format and manifest, the payload's size and SHA-256, the manifest against the
payload (counts, digests), and the code version and snapshot schema this release can load.

The restored cluster gets a **new identity**: a freshly generated Raft secret (all Raft
traffic is authenticated with it, so a restored node can neither join the old cluster nor
accept one of its members) and a new cluster id (`cluster.id`). Leadership bookkeeping
(`leader_term`, `leader_name`), the replicated membership overrides and drain flags
describe the old cluster's members and are reset: the new cluster's members are its
layout's nodes. Everything else (operations, executions, histories, rollups, uptime)
is the backup's, and each node begins at the backup's applied index.

Two targets: a directory holding a local cluster layout (`layout.json`, as `make run` and
`python -m daemon cluster` write it) is restored in place once every node is stopped;
any other directory must be empty or absent and gets a new sequential layout, started with
`python -m daemon cluster --data-dir DIR --nodes N --http-port P`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from daemon import backup
from daemon.contract import format_time
from daemon.localcluster import Layout, NodeProcess, write_private
from daemon.localcluster.layout import LAYOUT_FILE
from daemon.raft_storage import write_full_dump

DUMP_FILE = "raft.dump"  # Config.dump_file's name inside a node's dataDir
RESTORED_FROM_FILE = "restored-from.json"


@dataclass(frozen=True)
class Restored:
    layout: Layout
    manifest: dict[str, Any]
    cluster_id: str
    in_place: bool


def target_layout(data_dir: Path, nodes: int, http_port: int, host: str) -> tuple[Layout, bool]:
    """(layout, in place): the existing layout with every node stopped, or a new one."""
    if (data_dir / LAYOUT_FILE).exists():
        layout = Layout.load(data_dir)
        running = [spec.name for spec in layout.nodes if NodeProcess(layout, spec.name).pid]
        if running:
            raise backup.BackupError(
                f"{', '.join(running)} still running in {data_dir}: stop every node first"
            )
        return layout, True
    if data_dir.exists() and any(data_dir.iterdir()):
        raise backup.BackupError(
            f"{data_dir} is not empty and holds no cluster layout: restore into an empty "
            "directory or into a stopped cluster's data dir"
        )
    if not 1 <= nodes <= 9:
        raise backup.BackupError("--nodes must be between 1 and 9")
    return Layout.sequential(data_dir, nodes, http_port, host), False


def restored_state(data: dict[str, Any]) -> dict[str, Any]:
    """The backup's state as a new cluster starts from it (see the module docstring)."""
    return {**data, "members": {}, "draining": {}, "leader_term": 0, "leader_name": ""}


def restore_layout(layout: Layout, manifest: dict[str, Any], data: dict[str, Any]) -> str:
    """Write every node's data dir of `layout` from a checked backup; a new Raft secret and
    cluster id. Returns the cluster id. Each data dir is written beside the old one and
    swapped in, so a failure while writing leaves the old data dirs as they were."""
    applied_index = int(manifest["appliedIndex"])
    if applied_index < 2:
        raise backup.BackupError("the backup's applied index is below 2: nothing to restore")
    state = restored_state(data)
    members = [spec.raft_address for spec in layout.nodes]
    layout.save()
    staged: list[tuple[Path, Path]] = []
    try:
        for spec in layout.nodes:
            final = layout.data_dir(spec.name)
            final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            staging = final.with_name("data.restoring")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(mode=0o700)
            staged.append((staging, final))
            write_full_dump(
                str(staging / DUMP_FILE),
                state,
                int(manifest["codeVersion"]),
                applied_index,
                members,
            )
    except OSError as exc:
        for staging, _ in staged:
            shutil.rmtree(staging, ignore_errors=True)
        raise backup.BackupError(f"cannot write the restored data: {exc}") from None
    for staging, final in staged:
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    cluster_id = str(uuid.uuid4())
    write_private(layout.raft_secret_path, secrets.token_urlsafe(32) + "\n")
    write_private(layout.root / "cluster.id", cluster_id + "\n")
    record = {"clusterId": cluster_id, "restoredAt": format_time(time.time()), **manifest}
    write_private(layout.root / RESTORED_FROM_FILE, json.dumps(record, indent=2) + "\n")
    layout.write_configs()
    return cluster_id


def restore(
    backup_file: Path,
    data_dir: Path,
    nodes: int = 3,
    http_port: int = 8080,
    host: str = "127.0.0.1",
) -> Restored:
    manifest, data = backup.read(backup_file)
    layout, in_place = target_layout(Path(data_dir), nodes, http_port, host)
    cluster_id = restore_layout(layout, manifest, data)
    return Restored(layout, manifest, cluster_id, in_place)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "restore",
        help="write data dirs from a backup, for a new cluster",
        description="Check a backup (format, manifest, SHA-256, code version) and write the "
        "data dirs a new cluster starts from with exactly its state and a new identity. "
        "DIR is a stopped cluster's data dir (restored in place) or an empty directory.",
    )
    p.add_argument("--backup", required=True, help="the backup file")
    p.add_argument("--data-dir", required=True, help="the cluster's data dir")
    p.add_argument("--nodes", type=int, default=3, help="nodes of a new layout (default 3)")
    p.add_argument("--http-port", type=int, default=8080, help="first node's HTTP port")
    p.add_argument("--host", default="127.0.0.1", help="address the nodes bind")


def run_restore(args: argparse.Namespace) -> int:
    try:
        result = restore(
            Path(args.backup), Path(args.data_dir), args.nodes, args.http_port, args.host
        )
    except backup.BackupError as exc:
        print(f"daemon restore: refused: {exc}", file=sys.stderr)
        return 2
    m, layout = result.manifest, result.layout
    print(
        f"daemon restore: {len(layout.nodes)} data dirs in {layout.root} at applied index "
        f"{m['appliedIndex']} ({m['operations']} operations, {m['totalExecutions']} "
        f"executions, {m['executionRecordsHeld']} records held), new cluster id "
        f"{result.cluster_id}"
    )
    if not result.in_place:
        first = layout.nodes[0].http_port
        print(
            f"start it: python -m daemon cluster --data-dir {layout.root} "
            f"--nodes {len(layout.nodes)} --http-port {first}"
        )
    return 0


# ---- verification: restore into a scratch node and compare -----------------------------
# What a restored node must report exactly as the manifest says. The chain digest is
# checked on the restored files instead: a running node extends it with its own leader
# and uptime entries at once (daemon/backup.py explains).
CHECKED = (
    "contentDigest",
    "operations",
    "executionRecordsHeld",
    "historyRecords",
    "totalExecutions",
)


def mismatches(manifest: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    found = [
        f"{field}: manifest {manifest.get(field)!r}, restored {summary.get(field)!r}"
        for field in CHECKED
        if manifest.get(field) != summary.get(field)
    ]
    if int(summary.get("appliedIndex") or 0) < int(manifest["appliedIndex"]):
        found.append(
            f"appliedIndex: restored node at {summary.get('appliedIndex')}, "
            f"below the manifest's {manifest['appliedIndex']}"
        )
    return found


def summary_of(url: str, token: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """A node's `GET /admin/backup/summary`."""
    response = httpx.get(
        url + "/admin/backup/summary",
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout_s,
    )
    response.raise_for_status()
    return response.json()


def verify_in_scratch_node(backup_file: Path, ready_s: float = 60.0) -> dict[str, Any]:
    """Check the file, restore it into a single node on free loopback ports (a temporary
    dir, removed after), start it, and compare its summary with the manifest.
    {"node", "summary", "mismatches", "timings"}; BackupError when the file is refused or
    the node does not start or answer."""
    started = time.monotonic()
    manifest, data = backup.read(backup_file)
    checked = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="backup-verify-"))
    token = secrets.token_urlsafe(24)
    process = None
    try:
        layout = Layout.on_free_ports(scratch / "cluster", 1)
        layout.save()
        layout.write_secrets(None, {"admin": token})
        layout.write_configs()
        restore_layout(layout, manifest, data)
        written = time.monotonic()
        spec = layout.nodes[0]
        process = NodeProcess(layout, spec.name)
        process.start()
        if not process.wait_ready(ready_s):
            tail = " | ".join(process.status(5).log_tail)
            raise backup.BackupError(f"the scratch node did not start: {tail[-300:]}")
        ready = time.monotonic()
        summary = summary_of(spec.url, token)
        return {
            "node": spec.url,
            "summary": summary,
            "mismatches": mismatches(manifest, summary),
            "timings": {
                "checkFileS": round(checked - started, 3),
                "writeDataDirS": round(written - checked, 3),
                "startNodeS": round(ready - written, 3),
                "compareS": round(time.monotonic() - ready, 3),
            },
        }
    except httpx.HTTPError as exc:
        raise backup.BackupError(f"the scratch node did not answer: {exc}") from None
    finally:
        if process is not None:
            process.stop(10)
        shutil.rmtree(scratch, ignore_errors=True)
