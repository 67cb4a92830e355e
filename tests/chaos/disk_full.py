"""Scenario: one node's data filesystem (a small tmpfs) fills up under a steady
writer, then space is freed. Prints one JSON line: what clients and the full node
said, and what every node holds afterwards.

    python -m tests.chaos.disk_full BASE_DIR [--role follower|leader] [--tmpfs-mib 24]

Run it through `netns.run_in_private_netns`: its mount namespace is private too
(`--mount-proc`), so the tmpfs vanishes with the scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.chaos import netns
from tests.chaos.checker import check_executions
from tests.chaos.cluster_ops import NOOP, converged, make_leader, wait_until
from tests.chaos.writer import Writer
from tests.cluster_harness import ADMIN_TOKEN, Cluster, Node, wait_for

RESERVE_BYTES = 4 << 20


def fill(path: Path) -> None:
    """Write zeros into `path` until the filesystem refuses (ENOSPC), in smaller and
    smaller writes, unbuffered: a buffered file's close would retry the refused rest."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (256 << 10, 4 << 10, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)


def disk_of(cluster: Cluster, node: Node) -> dict[str, Any]:
    return cluster.get(node, "/health/node").json()["disk"]


def run(base_dir: Path, role: str, tmpfs_mib: int) -> dict[str, Any]:
    cluster = Cluster(base_dir, size=3, env={"DAEMON_DISK_RESERVE_BYTES": str(RESERVE_BYTES)})
    target = cluster.nodes[0]
    data_dir = target.data_dir
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={tmpfs_mib}m,mode=0700", "tmpfs", str(data_dir)],
        check=True,
    )
    filler = data_dir / "filler.bin"
    try:
        cluster.start()
        assert cluster.define(cluster.nodes[1], NOOP).status_code in (200, 201)
        if role == "leader":
            make_leader(cluster, target)
        else:
            make_leader(cluster, cluster.nodes[1])
        with Writer([n.url for n in cluster.nodes], NOOP["id"], ADMIN_TOKEN) as writer:
            wait_for(lambda: writer.count() >= 200, what="200 acknowledged before the fill")
            filled_at = time.monotonic()
            fill(filler)
            full_s = wait_until(lambda: disk_of(cluster, target)["full"], 10)
            refused = cluster.http.post(
                f"{target.url}/execute/{NOOP['id']}",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=10,
            )
            leader_moved_s = wait_until(lambda: cluster.leader().name != target.name, 15)
            acked_before = writer.count()
            others_acked_s = wait_until(lambda: writer.count() >= acked_before + 100, 15)
            time.sleep(3.0)  # the full node stays full under writes for a while
            alive = target.alive
            live = cluster.get(target, "/health/live").status_code
            reads = cluster.get(target, "/executions?limit=5").status_code
            full_view = disk_of(cluster, target)
            freed_at = time.monotonic()
            filler.unlink()
            resumed_s = wait_until(lambda: not disk_of(cluster, target)["full"], 10)
            ok_after = wait_until(
                lambda: (
                    cluster.http.post(
                        f"{target.url}/execute/{NOOP['id']}",
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                        timeout=5,
                    ).status_code
                    == 200
                ),
                15,
            )
            acked_at_free = writer.count()
            wait_until(lambda: writer.count() >= acked_at_free + 100, 15)
        converge_s = wait_until(lambda: converged(cluster), 30)
        check = check_executions(cluster, writer.acked_ids())
        return {
            "role": role,
            "fullDetectedAfterS": full_s,
            "refusedStatus": refused.status_code,
            "refusedBody": refused.json() if refused.status_code != 200 else None,
            "refusedRetryAfter": refused.headers.get("retry-after"),
            "leaderMovedAfterS": leader_moved_s,
            "othersKeptAckingAfterS": others_acked_s,
            "aliveWhileFull": alive,
            "liveWhileFull": live,
            "readsWhileFull": reads,
            "diskWhileFull": full_view,
            "resumedAfterFreeS": resumed_s,
            "firstWriteOkAfterFreeS": ok_after,
            "fillToFreeS": round(freed_at - filled_at, 2),
            "converged": converge_s is not None,
            "acked": len(writer.acked_ids()),
            "outcomes": dict(writer.outcomes),
            "check": check,
            "sigbus": "SIGBUS" in target.log() or (target.proc and target.proc.returncode == -7),
        }
    finally:
        with contextlib.suppress(OSError):
            filler.unlink()
        cluster.stop_all()
        subprocess.run(["umount", "-l", str(data_dir)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_dir", type=Path)
    parser.add_argument("--role", choices=("follower", "leader"), default="follower")
    parser.add_argument("--tmpfs-mib", type=int, default=24)
    args = parser.parse_args()
    netns.enter()
    print(json.dumps(run(args.base_dir, args.role, args.tmpfs_mib)))


if __name__ == "__main__":
    main()
