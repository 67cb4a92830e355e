"""What the backup actions do, as plain functions the steps, tasks and tests call.

- `take`: stream a backup from a caught-up node (a follower when one is caught up, so
  the leader keeps serving), store it (checked on arrival), record it.
- `verify`: restore it into a scratch single node on free loopback ports, started through
  the node-process layer (`daemon.localcluster`; the console's node manager has not
  landed yet), and check the node's digests and totals against the manifest.
- `restore_local`: the disaster procedure for a cluster this machine runs: stop every
  node, restore its data dirs in place (a new cluster identity), start every node.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from django.utils import timezone

from console.backups.models import Backup
from console.backups.storage import Storage, default_storage
from console.clusters.models import Cluster
from console.events import journal
from daemon import backup as daemon_backup
from daemon.contract import ClusterView
from daemon.localcluster import Layout, NodeProcess, stop_nodes, wait_for
from daemon.restore import restore_layout, target_layout

BACKUP_TIMEOUT_S = 300.0
SCRATCH_READY_S = 60.0
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


def caught_up_source(view: ClusterView) -> Any:
    """A member to back up from: a caught-up follower first, else the leader."""
    members = [m for m in view.members if m.reachable]
    followers = [m for m in members if m.name != view.leader and m.lag_entries == 0]
    leader = [m for m in members if m.name == view.leader]
    for member in sorted(followers, key=lambda m: m.name) + leader:
        return member
    return None


def take(
    cluster: Cluster, url: str, node: str, actor: str, storage: Storage | None = None
) -> Backup:
    storage = storage or default_storage()
    key = f"{cluster.name}-{timezone.now():%Y%m%dT%H%M%S%f}.bak"
    headers = {"Authorization": f"Bearer {cluster.api_token}"} if cluster.api_token else {}
    try:
        with httpx.stream(
            "POST", url.rstrip("/") + "/admin/backup", headers=headers, timeout=BACKUP_TIMEOUT_S
        ) as response:
            if response.status_code != 200:
                response.read()
                raise daemon_backup.BackupError(
                    f"{node} answered {response.status_code}: {response.text[:200]}"
                )
            size = storage.write(key, response.iter_bytes())
    except httpx.HTTPError as exc:
        raise daemon_backup.BackupError(f"streaming the backup from {node} failed: {exc}") from None
    with storage.local_file(key) as path:
        manifest = daemon_backup.read_manifest_file(path)
    row = Backup.objects.create(
        cluster=cluster,
        taken_by=actor,
        source_node=node,
        manifest=manifest,
        size_bytes=size,
        location=key,
    )
    journal.append(
        "backup.taken",
        actor=actor,
        cluster=cluster,
        backup_id=row.id,
        node=node,
        applied_index=manifest["appliedIndex"],
        size_bytes=size,
    )
    return row


def summary_of(url: str, token: str) -> dict[str, Any]:
    response = httpx.get(
        url + "/admin/backup/summary", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    response.raise_for_status()
    return response.json()


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


def verify(row: Backup, actor: str, storage: Storage | None = None) -> dict[str, Any]:
    """Restore `row` into a scratch node and compare; records and journals the result."""
    storage = storage or default_storage()
    Backup.objects.filter(pk=row.pk).update(verification="verifying")
    started = time.monotonic()
    try:
        with storage.local_file(row.location) as path:
            result = _verify_file(path)
        ok = not result["mismatches"]
    except daemon_backup.BackupError as exc:
        result, ok = {"error": str(exc), "mismatches": []}, False
    seconds = round(time.monotonic() - started, 3)
    result["seconds"] = seconds
    Backup.objects.filter(pk=row.pk).update(
        verification="verified" if ok else "failed",
        verified_at=timezone.now(),
        verify_seconds=seconds,
        verification_result=result,
    )
    journal.append(
        "backup.verified" if ok else "backup.verify_failed",
        actor=actor,
        cluster=row.cluster,
        backup_id=row.id,
        seconds=seconds,
        reason=result.get("error") or "; ".join(result["mismatches"]),
    )
    row.refresh_from_db()
    return result


def _verify_file(path: Path) -> dict[str, Any]:
    manifest, data = daemon_backup.read(path)  # hash, manifest against payload, code version
    scratch = Path(tempfile.mkdtemp(prefix="backup-verify-"))
    token = secrets.token_urlsafe(24)
    process = None
    try:
        layout = Layout.on_free_ports(scratch / "cluster", 1)
        layout.save()
        layout.write_secrets(None, {"admin": token})
        layout.write_configs()
        restore_layout(layout, manifest, data)
        spec = layout.nodes[0]
        process = NodeProcess(layout, spec.name)
        process.start()
        if not process.wait_ready(SCRATCH_READY_S):
            tail = "\n".join(process.status(5).log_tail)
            raise daemon_backup.BackupError(f"the scratch node did not start: {tail[-300:]}")
        summary = summary_of(spec.url, token)
        return {
            "node": spec.url,
            "summary": summary,
            "mismatches": mismatches(manifest, summary),
        }
    except httpx.HTTPError as exc:
        raise daemon_backup.BackupError(f"the scratch node did not answer: {exc}") from None
    finally:
        if process is not None:
            process.stop(10)
        shutil.rmtree(scratch, ignore_errors=True)


# ---- restore (a cluster this machine runs) ------------------------------------------------
def stop_all(layout: Layout) -> list[str]:
    nodes = [NodeProcess(layout, spec.name) for spec in layout.nodes]
    stop_nodes(nodes, grace_s=20)
    running = [n.name for n in nodes if n.running()]
    if running:
        raise daemon_backup.BackupError(f"{', '.join(running)} did not stop")
    return [n.name for n in nodes]


def restore_in_place(layout_root: Path, path: Path) -> dict[str, Any]:
    manifest, data = daemon_backup.read(path)
    layout, _ = target_layout(layout_root, len(Layout.load(layout_root).nodes), 0, "")
    cluster_id = restore_layout(layout, manifest, data)
    return {"clusterId": cluster_id, "appliedIndex": manifest["appliedIndex"]}


def start_all(layout: Layout) -> list[str]:
    nodes = [NodeProcess(layout, spec.name) for spec in layout.nodes]
    for node in nodes:
        if not node.running():
            node.start()
    for node in nodes:
        wait_for(node.answers_ready, timeout=60, what=f"{node.name} ready")
    return [n.name for n in nodes]
