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
from daemon.restore import (
    restore_layout,
    target_layout,
    verify_in_scratch_node,
)

BACKUP_TIMEOUT_S = 300.0
SCRATCH_READY_S = 60.0


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
    # The token goes only to hosts configured for the cluster (issue 14: member poisoning).
    trusted = cluster.api_token and cluster.trusts_url(url)
    headers = {"Authorization": f"Bearer {cluster.api_token}"} if trusted else {}
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


def verify(row: Backup, actor: str, storage: Storage | None = None) -> dict[str, Any]:
    """Restore `row` into a scratch node and compare; records and journals the result."""
    storage = storage or default_storage()
    Backup.objects.filter(pk=row.pk).update(verification="verifying")
    started = time.monotonic()
    try:
        with storage.local_file(row.location) as path:
            result = verify_in_scratch_node(path, SCRATCH_READY_S)
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
